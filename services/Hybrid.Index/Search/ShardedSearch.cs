using Hybrid.Index.Listings;
using Microsoft.Extensions.Options;

namespace Hybrid.Index.Search;

/// <summary>A page of merged results.</summary>
public sealed record SearchPage(IReadOnlyList<ShardHit> Hits, long TotalHits, bool HasMore);

/// <summary>
/// Routes listings to their shard and fans queries out to every shard, merging their top hits.
/// Each shard scores with its own BM25 statistics; listings are spread over shards by a hash of
/// their id, so term statistics are alike across shards and relevance scores merge directly.
/// </summary>
public sealed class ShardedSearch(IGrainFactory grains, IOptions<SearchOptions> options)
{
    public int ShardCount { get; } = options.Value.Shards;

    public ISearchShardGrain ShardOf(string listingId) =>
        grains.GetGrain<ISearchShardGrain>(ListingShards.Of(listingId, ShardCount));

    /// <summary>Hits <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="limit"/> in the query's order.</summary>
    public async Task<SearchPage> SearchAsync(SearchQuery query, int offset, int limit)
    {
        ArgumentNullException.ThrowIfNull(query);
        var take = offset + limit;
        var shards = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(i => grains.GetGrain<ISearchShardGrain>(i).Search(query, take)));
        var merged = shards.SelectMany(s => s.Hits).Order(Comparer(query.Order)).Skip(offset).Take(limit).ToList();
        var total = shards.Sum(s => s.TotalHits);
        return new SearchPage(merged, total, offset + merged.Count < total);
    }

    /// <summary>Activates every shard (rebuilding each from storage); returns the listings they hold.</summary>
    public async Task<int> WarmUpAsync()
    {
        var counts = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(i => grains.GetGrain<ISearchShardGrain>(i).Count()));
        return counts.Sum();
    }

    /// <summary>The same total order the shards sort by, so merging never reorders a shard's own hits.</summary>
    public static IComparer<ShardHit> Comparer(SearchOrder order) => Comparer<ShardHit>.Create((a, b) =>
    {
        var first = order switch
        {
            SearchOrder.PriceAscending => a.PriceMicros.CompareTo(b.PriceMicros),
            SearchOrder.PriceDescending => b.PriceMicros.CompareTo(a.PriceMicros),
            SearchOrder.Newest => b.CreatedMs.CompareTo(a.CreatedMs),
            _ => b.Score.CompareTo(a.Score),
        };
        return first != 0 ? first : string.CompareOrdinal(a.ListingId, b.ListingId);
    });
}
