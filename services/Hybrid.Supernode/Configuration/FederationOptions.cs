using Hybrid.Protocol.Identity;

namespace Hybrid.Supernode.Configuration;

/// <summary>
/// Federation with other clusters (<c>Supernode:Federation:*</c>): each cluster has a key of its own
/// (its id is derived like a PeerId) and pulls from its peer clusters the signed listings, reviews and
/// replies it lacks.
/// </summary>
public sealed class FederationOptions
{
    /// <summary>
    /// Peer clusters, comma-separated: each the URL of one of its supernodes' federation listener
    /// (<c>https://</c>, mutual TLS) or public port (<c>http(s)://</c>), optionally pinned to its cluster
    /// id as <c>ID@URL</c>: a pinned peer that presents another key is refused before any request.
    /// Empty: this cluster pulls from nobody (it still answers).
    /// </summary>
    public string Peers { get; set; } = string.Empty;

    /// <summary>
    /// Where the federation listener binds (<c>IP:PORT</c>, e.g. <c>0.0.0.0:7443</c>): TLS 1.3 with the
    /// cluster key's certificate, and a certificate required of every caller, whose key is its
    /// cluster id; calls are charged to that id. Then the federation service answers there only.
    /// Unset: it answers on the public port, charged to the caller's address.
    /// </summary>
    public string? Listen { get; set; }

    /// <summary>Federation calls one peer cluster may make per second (on the federation listener).</summary>
    public int CallsPerSecond { get; set; } = 50;

    /// <summary>Cluster ids never pulled from, comma-separated.</summary>
    public string Blocked { get; set; } = string.Empty;

    /// <summary>
    /// The cluster's federation key (PKCS#8 PEM). Every supernode of a cluster uses the same file (a
    /// mounted secret). Unset: <c>federation-key.pem</c> in the data directory, created on first start.
    /// </summary>
    public string? KeyFile { get; set; }

    /// <summary>How often each peer cluster is reconciled with.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Listings taken from one peer cluster in one round at most; the rest come in later rounds.</summary>
    public int MaxListingsPerRound { get; set; } = 20_000;

    /// <summary>Reviews taken from one peer cluster in one round at most; the rest come in later rounds.</summary>
    public int MaxReviewsPerRound { get; set; } = 20_000;

    /// <summary>Objects that fail verification a peer cluster may send before it is dropped (each one also throttles it).</summary>
    public int MaxStrikes { get; set; } = 3;

    /// <summary>
    /// Peer clusters this cluster may learn from the peers it pulls from (each hello names the
    /// clusters its sender pulls from), at most <see cref="MaxLearnedPerIntroducer"/> from any one of
    /// them. A learned peer is pinned to the id its introducer gave, and is dialed only at public
    /// addresses (<see cref="LearnPrivateAddresses"/>). 0: learn none.
    /// </summary>
    public int MaxLearnedPeers { get; set; } = 16;

    /// <summary>Peer clusters learned from any one introducer at most.</summary>
    public int MaxLearnedPerIntroducer { get; set; } = 4;

    /// <summary>
    /// Whether learned peers may be dialed at loopback, private, link-local or unique-local addresses,
    /// and over http. Off: a stranger's introduction cannot make this cluster call into its own
    /// network. On only for a lab or a private federation.
    /// </summary>
    public bool LearnPrivateAddresses { get; set; }

    /// <summary>The peers as given: URL, and the cluster id it is pinned to (or null).</summary>
    public IReadOnlyList<(string Url, PeerId? Pin)> PeerEntries =>
        [.. Peers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParsePeer)];

    /// <summary>The federation listener's address, parsed (null when unset).</summary>
    public System.Net.IPEndPoint? ListenEndPoint => Listen is { Length: > 0 } text && System.Net.IPEndPoint.TryParse(text, out var endpoint) ? endpoint : null;

    private static (string Url, PeerId? Pin) ParsePeer(string entry)
    {
        var at = entry.IndexOf('@', StringComparison.Ordinal);
        var scheme = entry.IndexOf("://", StringComparison.Ordinal);
        if (at > 0 && (scheme < 0 || at < scheme) && PeerId.TryParse(entry[..at], out var pin, out _))
        {
            return (entry[(at + 1)..], pin);
        }

        return (entry, null);
    }

    /// <summary>The blocked cluster ids, as given.</summary>
    public IReadOnlyList<string> BlockedIds => [.. Blocked.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>Every problem with these settings, one sentence each.</summary>
    public IEnumerable<string> Validate()
    {
        foreach (var (url, _) in PeerEntries)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                yield return $"Supernode:Federation:Peers has '{url}', which is not an http:// or https:// URL of a peer cluster's supernode (optionally pinned as CLUSTER-ID@URL)";
            }
        }

        if (Listen is { Length: > 0 } && ListenEndPoint is null)
        {
            yield return $"Supernode:Federation:Listen is '{Listen}'; give IP:PORT, e.g. 0.0.0.0:7443";
        }

        if (CallsPerSecond < 1)
        {
            yield return $"Supernode:Federation:CallsPerSecond is {CallsPerSecond}; give at least 1";
        }

        foreach (var id in BlockedIds)
        {
            if (!PeerId.TryParse(id, out _, out var error))
            {
                yield return $"Supernode:Federation:Blocked has '{id}', which is not a cluster id: {error}";
            }
        }

        if (Interval < TimeSpan.FromMilliseconds(100) || Interval > TimeSpan.FromDays(1))
        {
            yield return $"Supernode:Federation:Interval is {Interval}; give between 100 ms and a day";
        }

        if (MaxListingsPerRound < 1)
        {
            yield return $"Supernode:Federation:MaxListingsPerRound is {MaxListingsPerRound}; give at least 1";
        }

        if (MaxReviewsPerRound < 1)
        {
            yield return $"Supernode:Federation:MaxReviewsPerRound is {MaxReviewsPerRound}; give at least 1";
        }

        if (MaxStrikes < 1)
        {
            yield return $"Supernode:Federation:MaxStrikes is {MaxStrikes}; give at least 1";
        }

        if (MaxLearnedPeers is < 0 or > 256 || MaxLearnedPerIntroducer is < 1 or > 256)
        {
            yield return $"Supernode:Federation:MaxLearnedPeers is {MaxLearnedPeers} and MaxLearnedPerIntroducer {MaxLearnedPerIntroducer}; give 0-256 and 1-256";
        }
    }
}
