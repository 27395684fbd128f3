using Grpc.Core;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Sessions;
using Hybrid.Supernode.Relay;

namespace Hybrid.Supernode.Api;

/// <summary>Relayed links for peers that cannot reach each other directly: the dialer pays with its session.</summary>
public sealed class RelayService(
    SessionHub hub,
    RequestLimits limits,
    RelayHub relays,
    RelayDialer dialer,
    SupernodeOptions options) : RelayApi.RelayApiBase
{
    public override async Task Relay(IAsyncStreamReader<RelayFrame> requestStream, IServerStreamWriter<RelayFrame> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        if (await FirstMessage.ReadAsync(requestStream, options.HelloTimeout, "relay frame", context.CancellationToken) is not { } first)
        {
            return;
        }

        switch (first.KindCase)
        {
            case RelayFrame.KindOneofCase.Open:
                await dialer.DialAsync(first.Open, requestStream, responseStream, context, federatedBy: null);
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
}
