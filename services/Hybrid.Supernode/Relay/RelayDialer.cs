using Google.Protobuf;
using Grpc.Core;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Api;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Federation;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Sessions;

namespace Hybrid.Supernode.Relay;

/// <summary>
/// Relayed links for peers that cannot reach each other directly, wherever the dialer's request
/// arrives: from the dialer's session, forwarded by another supernode of this cluster, or carried
/// by a federated cluster for one of its peers.
/// </summary>
public sealed class RelayDialer(
    IGrainFactory grains,
    SessionHub hub,
    SupernodeMetrics metrics,
    RelayHub relays,
    RelayForwarding forwarding,
    RelayPort port,
    FederatedLookup federation,
    SupernodeOptions options,
    TimeProvider time)
{
    /// <summary>
    /// Opens a relayed link for the dialer's signed request and carries it until either side ends.
    /// The dialer spends relay capacity, so it must be someone: its own session here, a ticket from
    /// the supernode of this cluster that checked its session there, or (<paramref name="federatedBy"/>)
    /// a federated cluster known by its key, which checked its session there.
    /// </summary>
    public async Task DialAsync(SignedEnvelope open, IAsyncStreamReader<RelayFrame> requestStream, IServerStreamWriter<RelayFrame> responseStream, ServerCallContext context, PeerId? federatedBy)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = SignedEnvelopes.Verify(open, EnvelopeKinds.RelayRequest, time.GetUtcNow());
        var body = request.Body(RelayRequest.Parser);
        var target = Requests.ParsePeer(body.Target, "relay target");
        if (target.Equals(request.Signer))
        {
            throw Requests.Invalid("a peer cannot relay to itself");
        }

        // The dialer spends relay capacity, so it must be someone: its own session here, a ticket
        // from the supernode of this cluster that checked its session there, or a federated cluster
        // (known by its key) that checked it there and pays for the call.
        var ticket = federatedBy is null ? context.RequestHeaders.GetValue(RelayForwarding.ForwardedHeader) : null;
        if (federatedBy is null && ticket is null)
        {
            var session = hub.Require(context);
            if (!session.Peer.Equals(request.Signer))
            {
                throw new RpcException(new Status(StatusCode.PermissionDenied, "the relay request is signed by another peer than this session's"));
            }
        }
        else if (ticket is not null && (ticket.Length > 64 || !await grains.GetGrain<Index.Relay.IRelayTicketGrain>(ticket).Redeem(request.Signer.ToString(), target.ToString())))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "the forwarded relay request has no valid ticket from a supernode of this cluster"));
        }

        if (!hub.TryGetByPeer(target, out var targetSession))
        {
            // Its session is on another supernode of the cluster (or nowhere): forward once, never twice.
            var home = ticket is null ? await forwarding.HomeOfAsync(target) : null;
            if (home is null && ticket is null && federatedBy is null && await federation.HomeOfAsync(target, context) is { } cluster)
            {
                // A peer of a federated cluster: that cluster carries the link on (never further).
                var across = relays.Offer(request.Signer, target);
                try
                {
                    using var call = federation.OpenRelay(cluster, context.CancellationToken);
                    await forwarding.PipeThroughAsync(call, "federated", "the peer's home cluster did not open the link", open, across, requestStream, responseStream, context.CancellationToken);
                }
                finally
                {
                    relays.Release(across);
                }

                return;
            }

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
            if ((ticket is null && federatedBy is null ? port.Offer() : null) is { } slot)
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
