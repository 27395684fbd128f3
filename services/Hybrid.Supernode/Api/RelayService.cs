using Google.Protobuf;
using Grpc.Core;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Sessions;
using Hybrid.Supernode.Relay;

namespace Hybrid.Supernode.Api;

/// <summary>Relayed links for peers that cannot reach each other directly: the dialer pays with its session.</summary>
public sealed class RelayService(
    IGrainFactory grains,
    SessionHub hub,
    RequestLimits limits,
    SupernodeMetrics metrics,
    RelayHub relays,
    RelayForwarding forwarding,
    RelayPort port,
    SupernodeOptions options,
    TimeProvider time) : RelayApi.RelayApiBase
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
                var session = hub.Require(context);
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
        var target = Requests.ParsePeer(body.Target, "relay target");
        if (target.Equals(request.Signer))
        {
            throw Requests.Invalid("a peer cannot relay to itself");
        }

        // The dialer spends relay capacity, so it must be someone: its own session here, or a ticket
        // from the supernode of this cluster that checked its session there.
        var ticket = context.RequestHeaders.GetValue(RelayForwarding.ForwardedHeader);
        if (ticket is null)
        {
            var session = hub.Require(context);
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

            // Both calls are in: offer both peers the byte port when this supernode has one (a forwarded
            // dialer is another supernode, which pipes frames); else, or when either peer cannot reach
            // it in time, tell both the link runs in frames before any byte flows.
            using var both = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, answer.Aborted);
            if ((ticket is null ? port.Offer() : null) is { } slot)
            {
                // Disposed before frames start: a socket that came alone is closed, so its peer falls back too.
                using (slot)
                {
                    await responseStream.WriteAsync(new RelayFrame { Socket = new RelaySocket { Port = slot.Port, Token = ByteString.CopyFrom(slot.DialerToken) } }, both.Token);
                    await answer.Responses.WriteAsync(new RelayFrame { Socket = new RelaySocket { Port = slot.Port, Token = ByteString.CopyFrom(slot.TargetToken) } }, both.Token);
                    if (await port.AwaitAsync(slot, both.Token) is { } sockets)
                    {
                        await relays.SpliceAsync(link, sockets, both.Token);
                        return;
                    }
                }
            }

            await responseStream.WriteAsync(new RelayFrame { Accept = link.Id }, both.Token);
            await answer.Responses.WriteAsync(new RelayFrame { Accept = link.Id }, both.Token);
            await relays.PipeAsync(link, requestStream, responseStream, answer, context.CancellationToken);
        }
        finally
        {
            relays.Release(link);
        }
    }
}
