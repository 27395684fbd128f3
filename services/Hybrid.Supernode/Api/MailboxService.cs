using Google.Protobuf;
using Grpc.Core;
using Hybrid.Index.Mailbox;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Sessions;

namespace Hybrid.Supernode.Api;

/// <summary>Sealed items for offline peers: only the recipient takes, only the sender learns of delivery.</summary>
public sealed class MailboxService(
    IGrainFactory grains,
    SessionHub hub,
    RequestLimits limits,
    IdentityAdmission admission,
    SupernodeMetrics metrics,
    ReplyPages pages,
    SupernodeOptions options) : MailboxApi.MailboxApiBase
{
    public override async Task<DepositMailResponse> DepositMail(DepositMailRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = hub.Require(context);
        limits.Call(session.Peer);
        var recipient = Requests.ParsePeer(request.Recipient, "recipient");

        if (request.Item is not { Ciphertext.IsEmpty: false, Nonce.Length: 12, Tag.Length: 16, EphemeralPublicKey.Length: > 0 and <= 256 })
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "a mailbox item must be sealed (ephemeral key, 12-byte nonce, ciphertext, 16-byte tag)"));
        }

        // Store the four sealed parts only: nothing a sender adds beside them reaches the recipient.
        var sealedItem = new SealedItem { EphemeralPublicKey = request.Item.EphemeralPublicKey, Nonce = request.Item.Nonce, Ciphertext = request.Item.Ciphertext, Tag = request.Item.Tag };
        if (sealedItem.CalculateSize() != request.Item.CalculateSize())
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "a mailbox item carries fields beside the ephemeral key, nonce, ciphertext and tag; send only those"));
        }

        if (sealedItem.CalculateSize() > options.MailboxMaxItemBytes)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"a mailbox item is {sealedItem.CalculateSize()} bytes; at most {options.MailboxMaxItemBytes} (Supernode:MailboxMaxItemBytes)"));
        }

        // Mail goes only to identities the network knows (a sender sealed to a key it looked up), so
        // nobody can make mailboxes for made-up peers; and each sender has an hourly byte budget.
        if (!await admission.IsRegisteredAsync(recipient))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"no peer {recipient} has registered on this network"));
        }

        limits.MailDeposit(session.Peer, sealedItem.CalculateSize());
        var result = await grains.GetGrain<IMailboxGrain>(recipient.ToString()).Deposit(new MailDeposit(
            session.Peer.ToString(), sealedItem.ToByteArray(), options.MailboxTimeToLive, options.MailboxMaxItems, options.MailboxMaxBytes,
            Math.Max(1, (int)(options.MailboxMaxItems * options.MailboxSenderShare)), Math.Max(options.MailboxMaxItemBytes, (long)(options.MailboxMaxBytes * options.MailboxSenderShare))));
        if (!result.Stored)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, result.Message));
        }

        metrics.MailDeposited.Inc();
        if (hub.TryGetByPeer(recipient, out var online))
        {
            online.TrySend(new SessionServerMessage { Event = new SupernodeEvent { MailWaiting = new MailWaiting { Count = 1 } } });
        }

        return new DepositMailResponse { ItemId = result.ItemId, ExpiresMs = result.Expires.ToUnixTimeMilliseconds() };
    }

    public override async Task<TakeMailResponse> TakeMail(TakeMailRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = hub.Require(context);
        limits.Call(session.Peer);
        // The grain bounds what it hands over by sealed bytes; the reply is cut like every page, by the
        // size of the items as sent (ids, senders and times included). What is left comes next time.
        var items = await grains.GetGrain<IMailboxGrain>(session.Peer.ToString()).Peek(request.Limit <= 0 ? 100 : request.Limit, pages.Bytes);
        var response = new TakeMailResponse();
        pages.Fill(response.Items, items, i => new MailItem
        {
            ItemId = i.ItemId,
            Sender = i.Sender,
            Item = SealedItem.Parser.ParseFrom(i.SealedItem),
            DepositedMs = i.Deposited.ToUnixTimeMilliseconds(),
        });
        return response;
    }

    public override async Task<AckMailResponse> AckMail(AckMailRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = hub.Require(context);
        limits.Call(session.Peer);
        var removed = await grains.GetGrain<IMailboxGrain>(session.Peer.ToString()).Acknowledge([.. request.ItemIds.Take(500)]);
        metrics.MailDelivered.Inc(removed);
        return new AckMailResponse { Removed = removed };
    }

    public override async Task<MailStatusResponse> MailStatus(MailStatusRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = hub.Require(context);
        limits.Call(session.Peer);
        var recipient = Requests.ParsePeer(request.Recipient, "recipient");

        var status = await grains.GetGrain<IMailboxGrain>(recipient.ToString()).Status(session.Peer.ToString(), [.. request.ItemIds.Take(500)]);
        var response = new MailStatusResponse();
        response.Delivered.AddRange(status.Delivered);
        response.Pending.AddRange(status.Pending);
        return response;
    }
}
