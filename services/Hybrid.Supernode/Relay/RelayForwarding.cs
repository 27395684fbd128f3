using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Index.Directory;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Cluster;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Relay;

/// <summary>
/// A relayed link to a peer whose session is on another supernode of the cluster: the dialer's
/// supernode opens the same signed request there and pipes the frames through. Clients then need
/// to reach only their own supernode (behind one load-balanced address, for instance). The hop
/// carries the peers' TLS records, nothing else, so the internal connection needs no TLS of its own
/// to keep them private (when the internal URL is https, a certificate for another name is accepted).
/// </summary>
public sealed class RelayForwarding(IGrainFactory grains, SupernodeRegistration registration, RelayHub relays, SupernodeMetrics metrics) : IDisposable
{
    /// <summary>
    /// Metadata marking a forwarded relay request, carrying its one-time ticket: the receiving supernode
    /// redeems it (it stands for the dialer's session on the first supernode) and never forwards again.
    /// </summary>
    public const string ForwardedHeader = "hybrid-relay-forwarded";

    private static readonly TimeSpan TicketLifetime = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    /// <summary>The internal URL of the supernode holding <paramref name="target"/>'s session, if it is another live one.</summary>
    public async Task<string?> HomeOfAsync(PeerId target)
    {
        var snapshot = await grains.GetGrain<IPeerGrain>(target.ToString()).Describe();
        if (snapshot is not { Online: true, SupernodeUrl: { } url } || url == registration.AdvertisedUrl)
        {
            return null;
        }

        var home = (await registration.LiveSupernodesAsync()).FirstOrDefault(s => s.Url == url);
        return home?.InternalUrl is { } inner && inner != registration.InternalUrl ? inner : null;
    }

    /// <summary>Opens the link on <paramref name="internalUrl"/> and pipes it to the dialer's call until either side ends.</summary>
    public async Task ForwardAsync(string internalUrl, SignedEnvelope open, RelayLink link, IAsyncStreamReader<RelayFrame> dialerRequests, IServerStreamWriter<RelayFrame> dialerResponses, CancellationToken aborted)
    {
        ArgumentNullException.ThrowIfNull(link);
        var client = new Protocol.V1.RelayApi.RelayApiClient(Channel(internalUrl));
        var ticket = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        await grains.GetGrain<Index.Relay.IRelayTicketGrain>(ticket).Issue(link.Dialer.ToString(), link.Target.ToString(), DateTimeOffset.UtcNow + TicketLifetime);
        using var call = client.Relay(new Metadata { { ForwardedHeader, ticket } }, cancellationToken: aborted);
        await PipeThroughAsync(call, "forwarded", "the supernode holding the peer's session did not open the link", open, link, dialerRequests, dialerResponses, aborted);
    }

    /// <summary>
    /// Sends the dialer's signed request on <paramref name="call"/> (to the supernode or cluster that
    /// holds the target's session), waits for it to accept, then pipes frames both ways until either
    /// side ends. Its refusals (offline meanwhile, over its limits, no answer) are the dialer's answer.
    /// </summary>
    public async Task PipeThroughAsync(AsyncDuplexStreamingCall<RelayFrame, RelayFrame> call, string outcome, string notOpened, SignedEnvelope open, RelayLink link, IAsyncStreamReader<RelayFrame> dialerRequests, IServerStreamWriter<RelayFrame> dialerResponses, CancellationToken aborted)
    {
        ArgumentNullException.ThrowIfNull(call);
        ArgumentNullException.ThrowIfNull(dialerResponses);
        try
        {
            await call.RequestStream.WriteAsync(new RelayFrame { Open = open }, aborted);
            if (!await call.ResponseStream.MoveNext(aborted) || call.ResponseStream.Current.KindCase != RelayFrame.KindOneofCase.Accept)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, notOpened));
            }
        }
        catch (RpcException ex) when (ex.StatusCode is not StatusCode.Unavailable)
        {
            throw new RpcException(new Status(ex.StatusCode, ex.Status.Detail));
        }

        metrics.RelayLinks.WithLabels(outcome).Inc();
        await dialerResponses.WriteAsync(new RelayFrame { Accept = link.Id }, aborted);
        await relays.PipeAsync(link, dialerRequests, dialerResponses, new RelayAnswer(call.ResponseStream, call.RequestStream, aborted), aborted);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
    }

    private GrpcChannel Channel(string url) => _channels.GetOrAdd(url, u => GrpcChannel.ForAddress(u, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            // Supernodes dial each other by address: a valid certificate with another name is accepted.
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, errors) => (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) == System.Net.Security.SslPolicyErrors.None },
        },
        DisposeHttpClient = true,
    }));
}
