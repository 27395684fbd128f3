using Grpc.Core;
using Hybrid.Index.Mailbox;
using Hybrid.Protocol.V1;
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
    MailIntake intake,
    Federation.FederatedLookup federation) : MailboxApi.MailboxApiBase
{
    public override async Task<DepositMailResponse> DepositMail(DepositMailRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = hub.Require(context);
        limits.Call(session.Peer);
        var recipient = Requests.ParsePeer(request.Recipient, "recipient");
        var sealedItem = intake.Sealed(request.Item);
        if (!await admission.IsRegisteredAsync(recipient) && await federation.HomeOfAsync(recipient, context) is { } home)
        {
            // A peer of a federated cluster: its mailbox is there. The sender's budget is charged here too.
            limits.MailDeposit(session.Peer, sealedItem.CalculateSize());
            return await federation.ForwardMailAsync(home, session.Peer, recipient, sealedItem, context.CancellationToken);
        }

        return await intake.DepositAsync(session.Peer, recipient, sealedItem);
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

        if (!await admission.IsRegisteredAsync(recipient) && await federation.HomeOfAsync(recipient, context) is { } home)
        {
            return await federation.ForwardMailStatusAsync(home, session.Peer, recipient, request.ItemIds, context.CancellationToken);
        }

        return await intake.StatusAsync(session.Peer, recipient, request.ItemIds);
    }
}
