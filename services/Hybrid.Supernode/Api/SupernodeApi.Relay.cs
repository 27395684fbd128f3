using Google.Protobuf;
using Grpc.Core;
using Hybrid.Index.Mailbox;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Relay;

namespace Hybrid.Supernode.Api;

/// <summary>Relay and mailbox: how peers reach each other when they cannot directly, or not now.</summary>
public sealed partial class SupernodeApi
{
    public override async Task Relay(IAsyncStreamReader<RelayFrame> requestStream, IServerStreamWriter<RelayFrame> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        using var firstFrame = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        firstFrame.CancelAfter(options.HelloTimeout);
        if (!await requestStream.MoveNext(firstFrame.Token))
        {
            return;
        }

        var first = requestStream.Current;
        switch (first.KindCase)
        {
            case RelayFrame.KindOneofCase.Open:
                await DialRelayAsync(first.Open, requestStream, responseStream, context);
                return;
            case RelayFrame.KindOneofCase.Accept:
                var session = RequireSession(context);
                if (!relays.TryClaim(first.Accept, session.Peer, out var link))
                {
                    throw new RpcException(new Status(StatusCode.NotFound, "no relay offer with that id is waiting for this peer (it timed out or was for another peer)"));
                }

                link.Answered.TrySetResult(new RelayAnswer(requestStream, responseStream, context.CancellationToken));
                await link.Done.Task.WaitAsync(context.CancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                return;
            default:
                throw new RpcException(new Status(StatusCode.InvalidArgument, "the first relay frame must open a link (signed request) or accept one (link id)"));
        }
    }

    private async Task DialRelayAsync(SignedEnvelope open, IAsyncStreamReader<RelayFrame> requestStream, IServerStreamWriter<RelayFrame> responseStream, ServerCallContext context)
    {
        var request = SignedEnvelopes.Verify(open, EnvelopeKinds.RelayRequest, time.GetUtcNow());
        var body = request.Body(RelayRequest.Parser);
        var target = ParsePeer(body.Target, "relay target");
        if (target.Equals(request.Signer))
        {
            throw Invalid("a peer cannot relay to itself");
        }

        // The dialer spends relay capacity, so it must be someone: its own session here, or a ticket
        // from the supernode of this cluster that checked its session there.
        var ticket = context.RequestHeaders.GetValue(RelayForwarding.ForwardedHeader);
        if (ticket is null)
        {
            var session = RequireSession(context);
            if (!session.Peer.Equals(request.Signer))
            {
                throw new RpcException(new Status(StatusCode.PermissionDenied, "the relay request is signed by another peer than this session's"));
            }
        }
        else if (ticket.Length > 64 || !await grains.GetGrain<Index.Relay.IRelayTicketGrain>(ticket).Redeem(request.Signer.ToString(), target.ToString()))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "the forwarded relay request has no valid ticket from a supernode of this cluster"));
        }

        if (!hub.TryGetByPeer(target, out var targetSession))
        {
            // Its session is on another supernode of the cluster (or nowhere): forward once, never twice.
            var home = ticket is null ? await forwarding.HomeOfAsync(target) : null;
            if (home is null)
            {
                metrics.RelayLinks.WithLabels("target_absent").Inc();
                throw new RpcException(new Status(StatusCode.NotFound, $"{target} holds no session on this supernode or any other of its cluster: it is offline"));
            }

            var forwarded = relays.Offer(request.Signer, target);
            try
            {
                await forwarding.ForwardAsync(home, open, forwarded, requestStream, responseStream, context.CancellationToken);
            }
            finally
            {
                relays.Release(forwarded);
            }

            return;
        }

        var link = relays.Offer(request.Signer, target);
        try
        {
            if (!targetSession.TrySend(new SessionServerMessage { Event = new SupernodeEvent { RelayOffer = new RelayOffer { LinkId = link.Id } } }))
            {
                throw new RpcException(new Status(StatusCode.Unavailable, $"{target}'s session is closing; try again"));
            }

            RelayAnswer answer;
            try
            {
                answer = await link.Answered.Task.WaitAsync(options.RelayAnswerTimeout, context.CancellationToken);
            }
            catch (TimeoutException)
            {
                metrics.RelayLinks.WithLabels("unanswered").Inc();
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"{target} did not answer the relay offer within {options.RelayAnswerTimeout.TotalSeconds:0} s"));
            }

            // Tell the dialer the pipe is open before any byte flows, so it can start its handshake.
            await responseStream.WriteAsync(new RelayFrame { Accept = link.Id }, context.CancellationToken);
            await relays.PipeAsync(link, requestStream, responseStream, answer, context.CancellationToken);
        }
        finally
        {
            relays.Release(link);
        }
    }

    public override async Task<DepositMailResponse> DepositMail(DepositMailRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = RequireSession(context);
        limits.Call(session.Peer);
        var recipient = ParsePeer(request.Recipient, "recipient");

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
        var session = RequireSession(context);
        limits.Call(session.Peer);
        var items = await grains.GetGrain<IMailboxGrain>(session.Peer.ToString()).Peek(request.Limit <= 0 ? 100 : request.Limit, PageBytes);
        var response = new TakeMailResponse();
        response.Items.AddRange(items.Select(i => new MailItem
        {
            ItemId = i.ItemId,
            Sender = i.Sender,
            Item = SealedItem.Parser.ParseFrom(i.SealedItem),
            DepositedMs = i.Deposited.ToUnixTimeMilliseconds(),
        }));
        return response;
    }

    public override async Task<AckMailResponse> AckMail(AckMailRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = RequireSession(context);
        limits.Call(session.Peer);
        var removed = await grains.GetGrain<IMailboxGrain>(session.Peer.ToString()).Acknowledge([.. request.ItemIds.Take(500)]);
        metrics.MailDelivered.Inc(removed);
        return new AckMailResponse { Removed = removed };
    }

    public override async Task<MailStatusResponse> MailStatus(MailStatusRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var session = RequireSession(context);
        limits.Call(session.Peer);
        var recipient = ParsePeer(request.Recipient, "recipient");

        var status = await grains.GetGrain<IMailboxGrain>(recipient.ToString()).Status(session.Peer.ToString(), [.. request.ItemIds.Take(500)]);
        var response = new MailStatusResponse();
        response.Delivered.AddRange(status.Delivered);
        response.Pending.AddRange(status.Pending);
        return response;
    }
}
