using Hybrid.Index.Listings;
using Microsoft.Extensions.Options;

namespace Hybrid.Index.Search;

/// <summary>A page of merged results: the stored listings in order, with their scores.</summary>
public sealed record SearchPage(IReadOnlyList<(StoredListing Listing, float Score)> Hits, long TotalHits, bool HasMore, FacetCounts? Facets = null);

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

    /// <summary>
    /// Hits <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="limit"/> in the query's order.
    /// Query then fetch: every shard returns its best ids and sort keys; only the listings of the
    /// merged page are fetched, from the shards that hold them.
    /// </summary>
    public async Task<SearchPage> SearchAsync(SearchQuery query, int offset, int limit)
    {
        ArgumentNullException.ThrowIfNull(query);
        var take = offset + limit;
        var shards = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(i => grains.GetGrain<ISearchShardGrain>(i).Search(query, take)));
        var comparer = Comparer(query.Order);
        var page = shards
            .SelectMany((s, shard) => s.Hits.Select(hit => (Hit: hit, Shard: shard)))
            .OrderBy(h => h.Hit, comparer)
            .Skip(offset)
            .Take(limit)
            .ToList();
        var total = shards.Sum(s => s.TotalHits);
        var fetched = await Task.WhenAll(page
            .GroupBy(h => h.Shard)
            .Select(g => grains.GetGrain<ISearchShardGrain>(g.Key).Fetch([.. g.Select(h => h.Hit.ListingId)])));
        var byId = fetched.SelectMany(f => f).ToDictionary(l => l.ListingId, StringComparer.Ordinal);
        // A listing withdrawn between the two phases is simply left out of the page.
        var hits = page.Where(h => byId.ContainsKey(h.Hit.ListingId)).Select(h => (byId[h.Hit.ListingId], h.Hit.Score)).ToList();
        var facets = query.Facets ? FacetCounts.Merge(shards.Select(s => s.Facets ?? FacetCounts.Empty)) : null;
        return new SearchPage(hits, total, offset + page.Count < total, facets);
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
            SearchOrder.PriceAscending => a.SortKey.CompareTo(b.SortKey),
            SearchOrder.PriceDescending or SearchOrder.Newest => b.SortKey.CompareTo(a.SortKey),
            _ => b.Score.CompareTo(a.Score),
        };
        return first != 0 ? first : string.CompareOrdinal(a.ListingId, b.ListingId);
    });
}
