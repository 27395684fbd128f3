using System.Collections.Concurrent;
using Grpc.Net.Client;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;

namespace Hybrid.Supernode.Federation;

/// <summary>Where this cluster stands with one peer cluster.</summary>
public sealed class PeerCluster(string url, PeerId? pin = null)
{
    /// <summary>The peer's URL, as configured.</summary>
    public string Url { get; } = url;

    /// <summary>The cluster id the operator pinned this peer to, or null.</summary>
    public PeerId? Pin { get; } = pin;

    /// <summary>The cluster key the peer's TLS certificate last presented, when that key (not a CA) vouched for it.</summary>
    public PeerId? PresentedKey { get; set; }

    /// <summary>The cluster id its hello answer was signed with, once heard.</summary>
    public PeerId? ClusterId { get; set; }

    /// <summary>Who this peer is as far as known: the id its hello was signed with, else the key its TLS presented, else its pin.</summary>
    public PeerId? KnownId => ClusterId ?? PresentedKey ?? Pin;

    /// <summary>Objects it sent that failed verification, or answers that broke the protocol.</summary>
    public int Strikes { get; set; }

    /// <summary>Not pulled from again (blocked, or too many strikes) until this supernode restarts.</summary>
    public string? DroppedBecause { get; set; }

    /// <summary>No round before this time (a throttle after a strike or a failure).</summary>
    public DateTimeOffset NotBefore { get; set; }

    /// <summary>Failed rounds in a row (unreachable, timed out), for backing off.</summary>
    public int Failures { get; set; }
}

/// <summary>
/// The configured peer clusters and one channel to each, shared by the puller and by look-ups of
/// peers homed in other clusters.
/// </summary>
public sealed partial class FederationPeers(SupernodeOptions options, FederationIdentity identity, ILogger<FederationPeers> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly HashSet<string> _blocked = [.. options.Federation.BlockedIds];

    /// <summary>Whether the operators blocked <paramref name="cluster"/> (<c>Supernode:Federation:Blocked</c>): never pulled from, never answered.</summary>
    public bool IsBlocked(PeerId cluster) => _blocked.Contains(cluster.ToString());

    /// <summary>Every configured peer cluster and where this cluster stands with it.</summary>
    public IReadOnlyList<PeerCluster> All { get; } = [.. options.Federation.PeerEntries.Select(peer => new PeerCluster(peer.Url, peer.Pin))];

    /// <summary>A client of <paramref name="peer"/>'s federation service.</summary>
    public FederationApi.FederationApiClient Client(PeerCluster peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return new FederationApi.FederationApiClient(_channels.GetOrAdd(peer.Url, _ => Channel(peer)));
    }

    /// <summary>
    /// A channel to <paramref name="peer"/>. Over https this cluster presents its key's certificate
    /// (a federation listener requires it), and accepts the peer's certificate when its key is the
    /// pinned cluster's, or, unpinned, when a CA vouches for it or its key is a cluster key (which
    /// the hello must then be signed by).
    /// </summary>
    private GrpcChannel Channel(PeerCluster peer)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                ClientCertificates = [identity.Certificate],
                CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    var isKey = PeerCertificates.TryGetPeerId(certificate, out var presented);
                    if (peer.Pin is { } pin)
                    {
                        if (isKey && presented == pin)
                        {
                            peer.PresentedKey = presented;
                            return true;
                        }

                        LogPinMismatch(logger, peer.Url, pin, isKey ? presented.ToString() : "no cluster key");
                        return false;
                    }

                    if (errors == System.Net.Security.SslPolicyErrors.None)
                    {
                        peer.PresentedKey = null;
                        return true;
                    }

                    peer.PresentedKey = isKey ? presented : null;
                    return isKey;
                },
            },
        };
        return GrpcChannel.ForAddress(peer.Url, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = options.MaxMessageBytes,
            MaxSendMessageSize = options.MaxMessageBytes,
        });
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Federation: peer cluster at {Url} is pinned to cluster {Pin} but its TLS certificate is {Presented}'s; refused")]
    private static partial void LogPinMismatch(ILogger logger, string url, PeerId pin, string presented);
}
