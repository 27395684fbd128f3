using System.Collections.Concurrent;
using Grpc.Core;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Api;

namespace Hybrid.Supernode.Federation;

/// <summary>
/// Look-ups of peers homed in federated clusters: each peer cluster's own directory is asked (never
/// further), answers are checked and kept briefly. A peer's key must hash to its id and its profile
/// must carry its signature; its presence and addresses are the answering cluster's word, as they
/// are this cluster's for its own peers (a supernode is trusted for availability only: a wrong
/// address fails the peer link's TLS pinned to the peer's key).
/// </summary>
public sealed partial class FederatedLookup(FederationPeers peers, RequestLimits limits, TimeProvider time, ILogger<FederatedLookup> logger)
{
    /// <summary>How long an answer (or the lack of one) is reused.</summary>
    public static readonly TimeSpan Fresh = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan AskDeadline = TimeSpan.FromSeconds(3);
    private const int MaxCached = 10_000;
    private const int MaxEndpoints = 16;
    private const int MaxUrlLength = 256;
    private readonly ConcurrentDictionary<string, (PeerInfo? Info, DateTimeOffset At)> _cache = new(StringComparer.Ordinal);

    /// <summary>Whether there are peer clusters to ask.</summary>
    public bool Enabled => peers.All.Count > 0;

    /// <summary>
    /// What the peer clusters' directories know of <paramref name="peer"/>: an online answer first,
    /// then the most recently seen; null when none knows it.
    /// </summary>
    /// <remarks>
    /// Asking costs a call to every peer cluster, charged to the caller's address
    /// (<see cref="RequestLimits.RemoteLookup"/>); past its budget only a kept answer is given.
    /// </remarks>
    public async Task<PeerInfo?> AskAsync(PeerId peer, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var key = peer.ToString();
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(key, out var cached) && now - cached.At < Fresh)
        {
            return cached.Info?.Clone();
        }

        if (!Enabled || !limits.RemoteLookup(context))
        {
            return null;
        }

        var cancellationToken = context.CancellationToken;

        var answers = await Task.WhenAll(peers.All.Where(p => p.DroppedBecause is null).Select(p => AskOneAsync(p, peer, cancellationToken)));
        var best = answers.OfType<PeerInfo>().OrderByDescending(a => a.Online).ThenByDescending(a => a.LastSeenMs).FirstOrDefault();
        if (_cache.Count >= MaxCached)
        {
            // Bounded: a flood of look-ups of made-up ids costs a fresh start, never memory.
            _cache.Clear();
        }

        _cache[key] = (best, now);
        return best?.Clone();
    }

    /// <summary>The peer cluster <paramref name="peer"/> is registered with, when this cluster federates with it; else null.</summary>
    public async Task<PeerCluster?> HomeOfAsync(PeerId peer, ServerCallContext context) =>
        await AskAsync(peer, context) is { HomeCluster.Length: > 0 } info
            ? peers.All.FirstOrDefault(p => p.DroppedBecause is null && p.KnownId?.ToString() == info.HomeCluster)
            : null;

    /// <summary>Hands a sealed item from <paramref name="sender"/> to the recipient's <paramref name="home"/> cluster.</summary>
    public Task<DepositMailResponse> ForwardMailAsync(PeerCluster home, PeerId sender, PeerId recipient, SealedItem item, CancellationToken cancellationToken) =>
        ForwardedAsync(home, () => peers.Client(home).ForwardMailAsync(
            new ForwardedMail { Sender = sender.ToString(), Recipient = recipient.ToString(), Item = item },
            deadline: time.GetUtcNow().UtcDateTime + AskDeadline,
            cancellationToken: cancellationToken).ResponseAsync);

    /// <summary>Asks the recipient's <paramref name="home"/> cluster about items <paramref name="sender"/> had forwarded there.</summary>
    public Task<MailStatusResponse> ForwardMailStatusAsync(PeerCluster home, PeerId sender, PeerId recipient, IEnumerable<string> itemIds, CancellationToken cancellationToken)
    {
        var request = new MailStatusRequest { Recipient = recipient.ToString() };
        request.ItemIds.AddRange(itemIds.Take(500));
        return ForwardedAsync(home, () => peers.Client(home).ForwardMailStatusAsync(
            new ForwardedMailStatus { Sender = sender.ToString(), Request = request },
            deadline: time.GetUtcNow().UtcDateTime + AskDeadline,
            cancellationToken: cancellationToken).ResponseAsync);
    }

    /// <summary>
    /// Runs a forwarded call; the home cluster's refusals reach the sender as what they are (its
    /// words cut short), anything else as Unavailable: the sender may retry later.
    /// </summary>
    private async Task<T> ForwardedAsync<T>(PeerCluster home, Func<Task<T>> call)
    {
        var cluster = home.KnownId?.ToString() ?? home.Url;
        try
        {
            return await call();
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.NotFound or StatusCode.ResourceExhausted or StatusCode.InvalidArgument)
        {
            var detail = ex.Status.Detail.Length > 200 ? ex.Status.Detail[..200] + "…" : ex.Status.Detail;
            throw new RpcException(new Status(ex.StatusCode, $"the recipient's home cluster {cluster} refused: {detail}"));
        }
        catch (Exception ex) when (ex is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            LogUnanswered(logger, home.Url, ex is RpcException rpc ? rpc.StatusCode.ToString() : ex.GetType().Name);
            throw new RpcException(new Status(StatusCode.Unavailable, $"the recipient's home cluster {cluster} cannot be reached now; retry later"));
        }
    }

    /// <summary>Opens a relay call on the <paramref name="home"/> cluster's federation service, for a link to one of its peers.</summary>
    public AsyncDuplexStreamingCall<RelayFrame, RelayFrame> OpenRelay(PeerCluster home, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(home);
        return peers.Client(home).Relay(cancellationToken: cancellationToken);
    }

    private async Task<PeerInfo?> AskOneAsync(PeerCluster cluster, PeerId peer, CancellationToken cancellationToken)
    {
        try
        {
            var info = await peers.Client(cluster).LookupPeerAsync(
                new LookupPeerRequest { PeerId = peer.ToString() },
                deadline: time.GetUtcNow().UtcDateTime + AskDeadline,
                cancellationToken: cancellationToken);
            return Checked(info, peer, cluster);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
        catch (Exception ex) when (ex is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            LogUnanswered(logger, cluster.Url, ex is RpcException rpc ? rpc.StatusCode.ToString() : ex.GetType().Name);
            return null;
        }
    }

    /// <summary>The answer as this cluster passes it on, or null when it does not check out.</summary>
    private PeerInfo? Checked(PeerInfo info, PeerId peer, PeerCluster cluster)
    {
        if (info.PeerId != peer.ToString() || !PublicKeys.IsValidP256(info.PublicKey.Span) || !PeerId.FromPublicKey(info.PublicKey.Span).Equals(peer))
        {
            LogRefused(logger, cluster.Url, peer, "its key is not the peer's");
            return null;
        }

        if (info.Profile is not null)
        {
            try
            {
                info.DisplayName = SignedEnvelopes.Verify(info.Profile, EnvelopeKinds.Profile, time.GetUtcNow(), peer).Body(PeerProfile.Parser).DisplayName;
            }
            catch (EnvelopeRejectedException ex)
            {
                LogRefused(logger, cluster.Url, peer, $"its profile does not verify: {ex.Message}");
                return null;
            }
        }
        else
        {
            info.DisplayName = string.Empty;
        }

        if (info.Endpoints.Count > MaxEndpoints || info.Candidates.Count > MaxEndpoints
            || info.Endpoints.Concat(info.Candidates).Any(e => e.Url.Length > MaxUrlLength) || info.SupernodeUrl.Length > MaxUrlLength)
        {
            LogRefused(logger, cluster.Url, peer, $"it lists more than {MaxEndpoints} addresses or one longer than {MaxUrlLength} characters");
            return null;
        }

        info.HomeCluster = cluster.KnownId?.ToString() ?? string.Empty;
        return info;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Federation: peer cluster at {Url} did not answer a look-up ({Reason})")]
    private static partial void LogUnanswered(ILogger logger, string url, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Federation: peer cluster at {Url} answered a look-up of {Peer} that was not used: {Reason}")]
    private static partial void LogRefused(ILogger logger, string url, PeerId peer, string reason);
}
