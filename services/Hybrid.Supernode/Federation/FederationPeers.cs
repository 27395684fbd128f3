using System.Collections.Concurrent;
using Grpc.Net.Client;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;

namespace Hybrid.Supernode.Federation;

/// <summary>Where this cluster stands with one peer cluster.</summary>
public sealed class PeerCluster(string url, PeerId? pin = null, PeerId? learnedFrom = null)
{
    /// <summary>The cluster that introduced this peer, or null for one the operator configured.</summary>
    public PeerId? LearnedFrom { get; } = learnedFrom;

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
public sealed partial class FederationPeers(SupernodeOptions options, FederationIdentity identity, Hybrid.Index.Storage.IItemStore items, Ops.SupernodeMetrics metrics, ILogger<FederationPeers> logger) : IDisposable
{
    /// <summary>
    /// The item set of learned peers (field: the peer's cluster id), in the cluster's shared store:
    /// what one supernode learned survives its restart and is known to whichever supernode pulls next.
    /// </summary>
    public const string LearnedItemSet = "federation-learned";

    /// <summary>Peer clusters a hello answer names at most.</summary>
    public const int MaxIntroduced = 16;

    /// <summary>Learned peers remembered (pulled from or dropped) per place among those pulled from.</summary>
    public const int RememberedPerPlace = 4;

    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly HashSet<string> _blocked = [.. options.Federation.BlockedIds];
    private readonly System.Threading.Lock _learning = new();
    private System.Collections.Immutable.ImmutableArray<PeerCluster> _all = [.. options.Federation.PeerEntries.Select(peer => new PeerCluster(peer.Url, peer.Pin))];

    /// <summary>Whether the operators blocked <paramref name="cluster"/> (<c>Supernode:Federation:Blocked</c>): never pulled from, never answered.</summary>
    public bool IsBlocked(PeerId cluster) => _blocked.Contains(cluster.ToString());

    /// <summary>Every peer cluster, configured then learned, and where this cluster stands with it.</summary>
    public IReadOnlyList<PeerCluster> All => _all;

    /// <summary>The peers to name in a hello answer: those this cluster has heard from and still pulls from.</summary>
    public IEnumerable<KnownCluster> Introductions() =>
        _all.Where(p => p.DroppedBecause is null && p.ClusterId is not null)
            .Take(MaxIntroduced)
            .Select(p => new KnownCluster { ClusterId = p.ClusterId!.Value.ToString(), Url = p.Url });

    /// <summary>
    /// Takes the peer clusters <paramref name="introducer"/> named in its (verified) hello answer:
    /// each new one, within the limits and the address policy, is pulled from from now on, pinned to
    /// the id the introducer gave. Returns how many were learned.
    /// </summary>
    public int Learn(PeerCluster introducer, IEnumerable<KnownCluster> introduced) => LearnNew(introducer, introduced).Count;

    /// <summary><see cref="Learn"/>, then the peers learned are written to the cluster's store (see <see cref="LearnedItemSet"/>).</summary>
    public async Task<int> LearnAndRememberAsync(PeerCluster introducer, IEnumerable<KnownCluster> introduced)
    {
        var learned = LearnNew(introducer, introduced);
        foreach (var peer in learned)
        {
            await RememberAsync(peer);
        }

        return learned.Count;
    }

    private List<PeerCluster> LearnNew(PeerCluster introducer, IEnumerable<KnownCluster> introduced)
    {
        ArgumentNullException.ThrowIfNull(introducer);
        ArgumentNullException.ThrowIfNull(introduced);
        var federation = options.Federation;
        var learned = new List<PeerCluster>();
        if (federation.MaxLearnedPeers == 0 || introducer.ClusterId is not { } introducerId)
        {
            return learned;
        }

        lock (_learning)
        {
            foreach (var known in introduced.Take(MaxIntroduced))
            {
                var outcome = Consider(known, introducerId, federation, out var peer);
                metrics.FederationPeersLearned.WithLabels(outcome).Inc();
                if (peer is not null)
                {
                    _all = _all.Add(peer);
                    learned.Add(peer);
                    LogLearned(logger, peer.Url, peer.Pin!.Value, introducerId);
                }
            }
        }

        return learned;
    }

    /// <summary>Writes a learned peer (and why it was dropped, if it was) to the cluster's store; configured peers are not written.</summary>
    public Task RememberAsync(PeerCluster peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (peer.LearnedFrom is not { } introducer || peer.Pin is not { } pin)
        {
            return Task.CompletedTask;
        }

        var record = new RememberedPeer(peer.Url, introducer.ToString(), peer.DroppedBecause);
        return items.PutAsync(LearnedItemSet, pin.ToString(), System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(record, RememberedPeerJson.Default.RememberedPeer));
    }

    /// <summary>
    /// Takes the learned peers the cluster's store holds that this supernode does not know yet
    /// (learned before a restart, or by another supernode of the cluster), and those another
    /// supernode has since dropped. Each is weighed again as an introduction is (address policy,
    /// blocks, limits), so a store edited by hand or settings tightened since cannot widen them.
    /// </summary>
    public async Task RecallLearnedAsync(CancellationToken cancellationToken)
    {
        var federation = options.Federation;
        if (federation.MaxLearnedPeers == 0)
        {
            return;
        }

        var stored = new List<(PeerId Pin, PeerId Introducer, RememberedPeer Peer)>();
        await foreach (var (field, value) in items.ReadAllAsync(LearnedItemSet, cancellationToken))
        {
            if (stored.Count >= federation.MaxLearnedPeers * RememberedPerPlace)
            {
                break;
            }

            RememberedPeer? peer;
            try
            {
                peer = System.Text.Json.JsonSerializer.Deserialize(value, RememberedPeerJson.Default.RememberedPeer);
            }
            catch (System.Text.Json.JsonException)
            {
                continue;
            }

            if (peer is not null && PeerId.TryParse(field, out var pin, out _) && PeerId.TryParse(peer.LearnedFrom, out var introducer, out _))
            {
                stored.Add((pin, introducer, peer));
            }
        }

        lock (_learning)
        {
            // Dropped ones first: they hold no place among those pulled from.
            foreach (var (pin, introducer, remembered) in stored.OrderBy(s => s.Peer.DroppedBecause is null))
            {
                if (_all.FirstOrDefault(p => p.Pin == pin && p.LearnedFrom is not null) is { } known)
                {
                    known.DroppedBecause ??= remembered.DroppedBecause;
                    continue;
                }

                if (Consider(new KnownCluster { ClusterId = pin.ToString(), Url = remembered.Url }, introducer, federation, out var peer) == "learned")
                {
                    peer!.DroppedBecause = remembered.DroppedBecause;
                    _all = _all.Add(peer);
                    LogRecalled(logger, peer.Url, pin);
                }
            }
        }
    }

    private string Consider(KnownCluster known, PeerId introducerId, FederationOptions federation, out PeerCluster? peer)
    {
        peer = null;
        if (!PeerId.TryParse(known.ClusterId, out var id, out _) || known.Url.Length > 256 || !Uri.TryCreate(known.Url, UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp) || uri.UserInfo.Length > 0)
        {
            return "invalid";
        }

        if (id == identity.ClusterId || IsBlocked(id) || _all.Any(p => p.KnownId == id || string.Equals(p.Url, known.Url, StringComparison.OrdinalIgnoreCase)))
        {
            return "known";
        }

        // Plain http to a stranger's address, or an address inside a network: only in a lab.
        if (!federation.LearnPrivateAddresses
            && (uri.Scheme != Uri.UriSchemeHttps || (System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out var literal) && !IsPublic(literal))))
        {
            return "refused_address";
        }

        // A learned peer later dropped (struck out, blocked) frees its place among those pulled from,
        // but stays known, so it is never learned again, and keeps counting against its introducer:
        // an introducer whose peers had to be dropped gets no new places. All the learned peers ever
        // remembered are bounded too.
        var learned = _all.Where(p => p.LearnedFrom is not null).ToList();
        if (learned.Count(p => p.DroppedBecause is null) >= federation.MaxLearnedPeers
            || learned.Count >= federation.MaxLearnedPeers * RememberedPerPlace
            || learned.Count(p => p.LearnedFrom == introducerId) >= federation.MaxLearnedPerIntroducer)
        {
            return "over_limit";
        }

        peer = new PeerCluster(known.Url, id, introducerId);
        return "learned";
    }

    /// <summary>
    /// Whether <paramref name="address"/> is a public unicast address: not loopback, private,
    /// shared (CGNAT), link-local, unique-local, multicast or unspecified. Learned peers are dialed
    /// only there, so an introduction cannot make this cluster call into its own network.
    /// </summary>
    public static bool IsPublic(System.Net.IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (System.Net.IPAddress.IsLoopback(address) || address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any) || address.Equals(System.Net.IPAddress.Broadcast))
        {
            return false;
        }

        if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return !(b[0] == 0 || b[0] == 10 || (b[0] == 100 && (b[1] & 0xC0) == 64) || (b[0] == 169 && b[1] == 254)
                || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168) || b[0] >= 224);
        }

        var v6 = address.GetAddressBytes();
        return !(address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || (v6[0] & 0xFE) == 0xFC);
    }

    /// <summary>Connects to a learned peer at one of its public addresses only (names are resolved here, so a name cannot point inside either).</summary>
    private static async ValueTask<Stream> ConnectPublicAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var addresses = System.Net.IPAddress.TryParse(context.DnsEndPoint.Host, out var literal)
            ? [literal]
            : await System.Net.Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, cancellationToken);
        var target = addresses.FirstOrDefault(IsPublic)
            ?? throw new HttpRequestException($"{context.DnsEndPoint.Host} has no public address; a learned peer cluster is dialed only at public addresses");
        var socket = new System.Net.Sockets.Socket(target.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new System.Net.IPEndPoint(target, context.DnsEndPoint.Port), cancellationToken);
            return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

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
            ConnectCallback = peer.LearnedFrom is not null && !options.Federation.LearnPrivateAddresses ? ConnectPublicAsync : null,
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Federation: learned peer cluster {Cluster} at {Url}, introduced by cluster {Introducer}")]
    private static partial void LogLearned(ILogger logger, string url, PeerId cluster, PeerId introducer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Federation: peer cluster {Cluster} at {Url}, learned earlier, recalled from the cluster's store")]
    private static partial void LogRecalled(ILogger logger, string url, PeerId cluster);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Federation: peer cluster at {Url} is pinned to cluster {Pin} but its TLS certificate is {Presented}'s; refused")]
    private static partial void LogPinMismatch(ILogger logger, string url, PeerId pin, string presented);
}

/// <summary>A learned peer as the cluster's store keeps it.</summary>
/// <param name="Url">Where it answers.</param>
/// <param name="LearnedFrom">The cluster that introduced it.</param>
/// <param name="DroppedBecause">Why it is no longer pulled from, or null.</param>
public sealed record RememberedPeer(string Url, string LearnedFrom, string? DroppedBecause);

[System.Text.Json.Serialization.JsonSerializable(typeof(RememberedPeer))]
internal sealed partial class RememberedPeerJson : System.Text.Json.Serialization.JsonSerializerContext;
