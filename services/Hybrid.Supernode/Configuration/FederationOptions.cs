using Hybrid.Protocol.Identity;

namespace Hybrid.Supernode.Configuration;

/// <summary>
/// Federation with other clusters (<c>Supernode:Federation:*</c>): each cluster has a key of its own
/// (its id is derived like a PeerId) and pulls from its peer clusters the signed listings, reviews and
/// replies it lacks.
/// </summary>
public sealed class FederationOptions
{
    /// <summary>Public gRPC URLs of peer clusters, comma-separated. Empty: this cluster pulls from nobody (it still answers).</summary>
    public string Peers { get; set; } = string.Empty;

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

    /// <summary>The peer URLs, parsed.</summary>
    public IReadOnlyList<string> PeerUrls => [.. Peers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>The blocked cluster ids, as given.</summary>
    public IReadOnlyList<string> BlockedIds => [.. Blocked.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>Every problem with these settings, one sentence each.</summary>
    public IEnumerable<string> Validate()
    {
        foreach (var url in PeerUrls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                yield return $"Supernode:Federation:Peers has '{url}', which is not an http:// or https:// URL of a peer cluster's supernode";
            }
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
    }
}
