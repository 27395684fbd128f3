using System.Collections.Immutable;

namespace Hybrid.Index.Listings;

/// <summary>
/// A listing as stored: the seller's exact signed envelope and what the index needs to order
/// versions without parsing it. A withdrawn listing stays as a tombstone so older versions
/// cannot come back; it keeps the seller's signed withdrawal, which other clusters check.
/// Origin: the federation id of the cluster this version was published to (null: unknown).
/// </summary>
[GenerateSerializer, Immutable, Alias("hybrid.StoredListing")]
public sealed record StoredListing(
    [property: Id(0)] string ListingId,
    [property: Id(1)] string Seller,
    [property: Id(2)] ulong Version,
    [property: Id(3)] long ExpiresMs,
    [property: Id(4)] bool Withdrawn,
    [property: Id(5)] byte[] Envelope,
    [property: Id(6)] byte[]? Withdrawal = null,
    [property: Id(7)] string? Origin = null);

/// <summary>How a listing write went.</summary>
[GenerateSerializer, Alias("hybrid.ListingOutcome")]
public enum ListingOutcome
{
    Applied = 0,
    Unchanged = 1,
    Replayed = 2,
    NotSeller = 3,
    NotFound = 4,

    /// <summary>Refused: the seller's quota or the shard's ceiling would be exceeded.</summary>
    OverQuota = 5,
}

/// <summary>
/// Bounds on what the listing index holds, per shard (a listing id's shard is a hash, so a seller's
/// listings spread evenly over shards; the cluster-wide bound is the shard bound times the shard count).
/// </summary>
/// <param name="LivePerSeller">Live listings one seller may have in one shard.</param>
/// <param name="BytesPerSeller">Bytes of live listings one seller may have in one shard.</param>
/// <param name="Live">Live listings one shard holds, all sellers together.</param>
/// <param name="Bytes">Bytes of live listings one shard holds.</param>
public sealed record ListingQuotas(int LivePerSeller, long BytesPerSeller, int Live, long Bytes)
{
    /// <summary>No bounds (tests of the index alone).</summary>
    public static ListingQuotas Unlimited { get; } = new(int.MaxValue, long.MaxValue, int.MaxValue, long.MaxValue);
}

/// <summary>The outcome of a listing write, with a reason a person can read.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ListingWriteResult")]
public sealed record ListingWriteResult(
    [property: Id(0)] ListingOutcome Outcome,
    [property: Id(1)] string Message,
    [property: Id(2)] ulong Version)
{
    public bool Succeeded => Outcome is ListingOutcome.Applied or ListingOutcome.Unchanged;
}

/// <summary>The durable home of listings, per shard: SQLite embedded, Redis in a cluster.</summary>
public interface IListingStore
{
    /// <summary>
    /// Makes the caller the shard's one writer from now on, and returns its claim: a larger number
    /// than any claim before. A shard activation claims its shard before it reads it to rebuild, so a
    /// write made with an older claim (an activation left running on a supernode that was frozen and
    /// declared dead, while the shard activated elsewhere) is refused, instead of landing in the store
    /// unknown to the activation that now answers for the shard.
    /// </summary>
    Task<long> ClaimAsync(int shard);

    /// <summary>The shard's latest claim (0 when never claimed).</summary>
    Task<long> ClaimOfAsync(int shard);

    /// <summary>
    /// Stores <paramref name="listing"/> unless the store already holds that listing at the same or a
    /// newer version; returns once it is durable, true if it was stored. The check is the store's own
    /// and atomic: one whose earlier write landed although its answer was lost cannot take a listing back.
    /// </summary>
    /// <exception cref="Orleans.Storage.InconsistentStateException">
    /// <paramref name="claim"/> is no longer the shard's latest (see <see cref="ClaimAsync"/>): nothing was stored.
    /// The shard's claims are those of owner <c>listings/{shard}</c> (<see cref="Storage.StoreClaim.Listings"/>).
    /// </exception>
    Task<bool> SaveAsync(int shard, StoredListing listing, long claim);

    /// <summary>One listing, or null.</summary>
    Task<StoredListing?> GetAsync(int shard, string listingId);

    /// <summary>The stored listings among <paramref name="listingIds"/> (one read for a page; missing ids are left out, order is not kept).</summary>
    Task<IReadOnlyList<StoredListing>> GetManyAsync(int shard, IReadOnlyList<string> listingIds);

    /// <summary>Every listing of a shard, for rebuilding its index.</summary>
    IAsyncEnumerable<StoredListing> ReadShardAsync(int shard, CancellationToken cancellationToken);
}

/// <summary>Listings are spread over a fixed number of shards by a hash of their id.</summary>
public static class ListingShards
{
    /// <summary>The shard of <paramref name="listingId"/> among <paramref name="shardCount"/>; stable across processes.</summary>
    public static int Of(string listingId, int shardCount)
    {
        ArgumentNullException.ThrowIfNull(listingId);
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(listingId), hash);
        return (int)(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(hash) % (uint)shardCount);
    }
}

/// <summary>Search options shared by the shards (configured once per cluster).</summary>
public sealed class SearchOptions
{
    /// <summary>Number of search shards; fixed for the life of a cluster's data.</summary>
    public int Shards { get; set; } = 2;

    /// <summary>
    /// Where each shard keeps its Lucene index on disk (a folder per shard), so that a restart opens
    /// it and adds only what changed in the store since; null: in memory, rebuilt from the store at every start.
    /// </summary>
    public string? IndexDirectory { get; set; }

    /// <summary>
    /// Bytes of signed listings the fan-out keeps from recent result pages, so a page of listings
    /// searched often is served without reading the store (0: every page is read from the store).
    /// </summary>
    public long PageCacheBytes { get; set; } = 16L << 20;

    /// <summary>Whether a shard quiet for a sweep interval folds its small index segments into one (fewer segments, cheaper queries).</summary>
    public bool CompactWhenQuiet { get; set; } = true;

    /// <summary>
    /// How often a shard sweeps: takes expired listings out, commits its index kept on disk, and
    /// checks that its claim on the shard is still the latest (one that only answers searches learns
    /// no other way that its shard has activated elsewhere).
    /// </summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How stale a search may be: zero (the default), every search sees every write acknowledged
    /// before it began; above zero, a search sees every write acknowledged at least this long before
    /// it began, and a shard written to while searched refreshes at most once per interval instead of
    /// after every write (each refresh writes an index segment, and every query pays per segment).
    /// </summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.Zero;
}

/// <summary>A search as the shards see it.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.SearchQuery")]
public sealed record SearchQuery(
    [property: Id(0)] string Text,
    [property: Id(1)] long? MinPriceMicros,
    [property: Id(2)] long? MaxPriceMicros,
    [property: Id(3)] string? Currency,
    [property: Id(4)] string? Category,
    [property: Id(5)] string? Country,
    [property: Id(6)] string? Region,
    [property: Id(7)] string? Seller,
    [property: Id(8)] string? GeohashPrefix,
    [property: Id(9)] SearchOrder Order,
    [property: Id(10)] bool TypeAhead = false,
    [property: Id(11)] int MinReputation = 0,
    [property: Id(12)] bool Facets = false,
    [property: Id(13)] GeoCircle? Near = null);

/// <summary>A point and, when positive, the radius a search keeps listings within.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.GeoCircle")]
public sealed record GeoCircle(
    [property: Id(0)] double Latitude,
    [property: Id(1)] double Longitude,
    [property: Id(2)] double WithinKm);

[GenerateSerializer, Alias("hybrid.SearchOrder")]
public enum SearchOrder
{
    Relevance = 0,
    PriceAscending = 1,
    PriceDescending = 2,
    Newest = 3,
    Distance = 4,
}

/// <summary>
/// One hit from one shard, as light as merging needs: the listing id, its score and the value of
/// the query's sort key (price or creation time; 0 for relevance), and the version the shard
/// indexed (0: not known). Envelopes are fetched afterwards for the final page only.
/// </summary>
[GenerateSerializer, Immutable, Alias("hybrid.ShardHit")]
public sealed record ShardHit(
    [property: Id(0)] string ListingId,
    [property: Id(1)] float Score,
    [property: Id(2)] long SortKey,
    [property: Id(3)] ulong Version = 0);

[GenerateSerializer, Immutable, Alias("hybrid.ShardHits")]
public sealed record ShardHits(
    [property: Id(0)] ImmutableArray<ShardHit> Hits,
    [property: Id(1)] long TotalHits,
    [property: Id(2)] FacetCounts? Facets = null);

/// <summary>
/// A correction one shard offers for a query word its index does not know: the closest word it
/// does know (most similar first: 1 - edits / length; then by how many listings use it), for "did you mean".
/// </summary>
[GenerateSerializer, Immutable, Alias("hybrid.WordSuggestion")]
public sealed record WordSuggestion(
    [property: Id(0)] string Word,
    [property: Id(1)] string Correction,
    [property: Id(2)] float Similarity,
    [property: Id(3)] int DocFreq);

/// <summary>
/// Counts over a search's whole result set: listings per category, per country and per currency,
/// and a price histogram in the query's currency (none without one). Each shard counts its own
/// listings; counts add up across shards, and the histogram's buckets are fixed for that (1, 2,
/// 5 × a power of ten, in whole currency units).
/// </summary>
[GenerateSerializer, Immutable, Alias("hybrid.FacetCounts")]
public sealed record FacetCounts(
    [property: Id(0)] ImmutableDictionary<string, long> Categories,
    [property: Id(1)] ImmutableDictionary<string, long> Countries,
    [property: Id(2)] ImmutableDictionary<string, long> Currencies,
    [property: Id(3)] ImmutableArray<long> PriceBuckets)
{
    private const long MicrosPerUnit = 1_000_000;

    /// <summary>Lower bounds of the price buckets, in micros: 0, 1, 2, 5, 10, 20, 50, … units; the last is open-ended.</summary>
    public static readonly ImmutableArray<long> PriceEdgesMicros = [0, .. Enumerable.Range(0, 10).SelectMany(power => new long[] { 1, 2, 5 }.Select(step => step * (long)Math.Pow(10, power) * MicrosPerUnit))];

    public static readonly FacetCounts Empty = new(ImmutableDictionary<string, long>.Empty, ImmutableDictionary<string, long>.Empty, ImmutableDictionary<string, long>.Empty, []);

    /// <summary>The bucket a price falls in.</summary>
    public static int BucketOf(long priceMicros)
    {
        var found = PriceEdgesMicros.BinarySearch(priceMicros);
        return Math.Max(0, found >= 0 ? found : ~found - 1);
    }

    /// <summary>The counts of several shards added up.</summary>
    public static FacetCounts Merge(IEnumerable<FacetCounts> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var list = parts.ToList();
        var prices = new long[list.Count == 0 ? 0 : list.Max(p => p.PriceBuckets.Length)];
        foreach (var part in list)
        {
            for (var i = 0; i < part.PriceBuckets.Length; i++)
            {
                prices[i] += part.PriceBuckets[i];
            }
        }

        return new FacetCounts(Sum(list.Select(p => p.Categories)), Sum(list.Select(p => p.Countries)), Sum(list.Select(p => p.Currencies)), [.. prices]);
    }

    private static ImmutableDictionary<string, long> Sum(IEnumerable<ImmutableDictionary<string, long>> counts) =>
        counts.SelectMany(c => c).GroupBy(kv => kv.Key, StringComparer.Ordinal).ToImmutableDictionary(g => g.Key, g => g.Sum(kv => kv.Value), StringComparer.Ordinal);
}

/// <summary>A listing version a shard holds, for reconciling with other clusters.</summary>
/// <param name="ListingId">The listing.</param>
/// <param name="Version">The version held (a withdrawal's, for a withdrawn listing).</param>
/// <param name="Live">Searchable: neither withdrawn nor expired.</param>
/// <param name="Withdrawn">Withdrawn by its seller (a tombstone).</param>
[GenerateSerializer, Immutable, Alias("hybrid.HeldVersion")]
public readonly record struct HeldVersion(
    [property: Id(0)] string ListingId,
    [property: Id(1)] ulong Version,
    [property: Id(2)] bool Live,
    [property: Id(3)] bool Withdrawn);

/// <summary>Which state of a shard's listing versions: its activation, and how many changes it has applied since.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ShardGeneration")]
public readonly record struct ShardGeneration(
    [property: Id(0)] Guid Activation,
    [property: Id(1)] long Changes);
