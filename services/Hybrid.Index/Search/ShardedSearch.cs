using System.Collections.Immutable;
using Hybrid.Index.Listings;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Hybrid.Index.Search;

/// <summary>A page of merged results: the stored listings in order, with their scores.</summary>
/// <param name="Hits">The page's listings in order, with their scores.</param>
/// <param name="TotalHits">Listings matching the query (or, with <paramref name="DroppedWords"/>, the query without them).</param>
/// <param name="HasMore">Whether pages follow.</param>
/// <param name="Facets">Counts over the whole result set, when asked.</param>
/// <param name="Suggestion">When nothing matched every word: the query with the words no listing contains corrected ("did you mean").</param>
/// <param name="DroppedWords">When nothing matched every word: the word left out to find these hits.</param>
public sealed record SearchPage(IReadOnlyList<(StoredListing Listing, float Score)> Hits, long TotalHits, bool HasMore, FacetCounts? Facets = null, string? Suggestion = null, IReadOnlyList<string>? DroppedWords = null);

/// <summary>
/// Routes listings to their shard and fans queries out to every shard, merging their top hits.
/// Each shard scores with its own BM25 statistics; listings are spread over shards by a hash of
/// their id, so term statistics are alike across shards and relevance scores merge directly.
/// </summary>
public sealed partial class ShardedSearch(IGrainFactory grains, IListingStore store, TimeProvider time, IOptions<SearchOptions> options) : IDisposable
{
    // Grain references are resolved once: resolving one per call showed in profiles of busy search.
    private readonly ISearchShardGrain[] _shards = [.. Enumerable.Range(0, options.Value.Shards).Select(i => grains.GetGrain<ISearchShardGrain>(i))];

    // Listings of recent pages by id, each served only for the very version a shard just matched (a
    // seller's version is stored once and never changes), so nothing here can go stale. An embedded
    // store's readers drop their page cache at every write anywhere in it, which made busy search
    // under a trickle of publishes read every page's B-tree pages again.
    private readonly MemoryCache? _pages = options.Value.PageCacheBytes > 0
        ? new MemoryCache(new MemoryCacheOptions { SizeLimit = options.Value.PageCacheBytes, CompactionPercentage = 0.25 })
        : null;

    public int ShardCount => _shards.Length;

    public ISearchShardGrain ShardOf(string listingId) => _shards[ListingShards.Of(listingId, ShardCount)];

    /// <summary>
    /// Hits <paramref name="offset"/> to <paramref name="offset"/> + <paramref name="limit"/> in the query's order.
    /// Query then fetch: every shard returns its best ids and sort keys; only the listings of the
    /// merged page are fetched, from the shards that hold them.
    /// </summary>
    public async Task<SearchPage> SearchAsync(SearchQuery query, int offset, int limit)
    {
        ArgumentNullException.ThrowIfNull(query);
        var page = await SearchEveryWordAsync(query, offset, limit);
        if (page.TotalHits > 0 || string.IsNullOrWhiteSpace(query.Text))
        {
            return page;
        }

        // Nothing matched every word: suggest corrections, and search again without the word whose
        // absence finds the most (one word at most, at most MaxWordsTried tried). The same on every
        // page of the query, so its pages stay consistent.
        var suggestion = await SuggestAsync(query.Text);
        var units = QueryUnits().Matches(query.Text).Select(m => m.Value).ToList();
        if (units.Count < 2)
        {
            return page with { Suggestion = suggestion };
        }

        var tried = await Task.WhenAll(Enumerable.Range(0, Math.Min(units.Count, MaxWordsTried)).Select(async i =>
        {
            var variant = query with { Text = string.Join(' ', units.Where((_, j) => j != i)) };
            var counts = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(s => _shards[s].Search(variant with { Facets = false }, 1)));
            return (Word: units[i], Variant: variant, Hits: counts.Sum(c => c.TotalHits));
        }));
        var best = tried.MaxBy(t => t.Hits);
        if (best.Hits == 0)
        {
            return page with { Suggestion = suggestion };
        }

        return await SearchEveryWordAsync(best.Variant, offset, limit) with { Suggestion = suggestion, DroppedWords = [best.Word] };
    }

    /// <summary>The query's words and "quoted phrases", in order: what may be left out.</summary>
    [System.Text.RegularExpressions.GeneratedRegex("\"[^\"]*\"|\\S+")]
    private static partial System.Text.RegularExpressions.Regex QueryUnits();

    private const int MaxWordsTried = 8;

    /// <summary>The query with each word no listing contains replaced by the best correction any shard has; null when there is none.</summary>
    private async Task<string?> SuggestAsync(string text)
    {
        var offered = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(i => _shards[i].Suggest(text)));
        var corrections = offered.SelectMany(o => o)
            .GroupBy(s => (s.Word, s.Correction))
            .Select(g => new WordSuggestion(g.Key.Word, g.Key.Correction, g.Max(s => s.Similarity), g.Sum(s => s.DocFreq)))
            .GroupBy(s => s.Word, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderByDescending(s => s.Similarity).ThenByDescending(s => s.DocFreq).ThenBy(s => s.Correction, StringComparer.Ordinal).First().Correction, StringComparer.Ordinal);
        if (corrections.Count == 0)
        {
            return null;
        }

        var words = QueryUnits().Matches(text).Select(m => corrections.GetValueOrDefault(m.Value.ToLowerInvariant()) ?? m.Value);
        var suggested = string.Join(' ', words);
        return suggested == text ? null : suggested;
    }

    private async Task<SearchPage> SearchEveryWordAsync(SearchQuery query, int offset, int limit)
    {
        var take = offset + limit;
        var shards = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(i => TimedAsync(_shards[i], query, take)));
        var comparer = Comparer(query.Order);
        var page = shards
            .SelectMany((s, shard) => s.Hits.Select(hit => (Hit: hit, Shard: shard)))
            .OrderBy(h => h.Hit, comparer)
            .Skip(offset)
            .Take(limit)
            .ToList();
        var total = shards.Sum(s => s.TotalHits);
        var reading = System.Diagnostics.Stopwatch.GetTimestamp();
        var byId = await ReadPageAsync(page);
        IndexMeters.RecordStage("page", reading);
        // A listing withdrawn or expired between the two phases is simply left out of the page.
        var hits = page.Where(h => byId.ContainsKey(h.Hit.ListingId)).Select(h => (byId[h.Hit.ListingId], h.Hit.Score)).ToList();
        var facets = query.Facets ? FacetCounts.Merge(shards.Select(s => s.Facets ?? FacetCounts.Empty)) : null;
        return new SearchPage(hits, total, offset + page.Count < total, facets);
    }

    private static async Task<ShardHits> TimedAsync(ISearchShardGrain shard, SearchQuery query, int take)
    {
        var calling = System.Diagnostics.Stopwatch.GetTimestamp();
        var hits = await shard.Search(query, take);
        IndexMeters.RecordStage("shard.call", calling);
        return hits;
    }

    /// <summary>
    /// The live listings of <paramref name="page"/> by id: from the page cache where it holds the version
    /// the shard matched, the rest read straight from the listing store every supernode of the cluster
    /// shares. What the store holds is signed by the sellers, and at least as new as what the shards
    /// have indexed (a write is stored before it is indexed), so no call to the shards is needed.
    /// </summary>
    private async Task<Dictionary<string, StoredListing>> ReadPageAsync(List<(ShardHit Hit, int Shard)> page)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var byId = new Dictionary<string, StoredListing>(page.Count, StringComparer.Ordinal);
        var missing = new List<(ShardHit Hit, int Shard)>(page.Count);
        foreach (var entry in page)
        {
            if (_pages is not null && entry.Hit.Version != 0 && _pages.TryGetValue(entry.Hit.ListingId, out StoredListing? cached) && cached!.Version == entry.Hit.Version)
            {
                if (cached.ExpiresMs > now)
                {
                    byId[cached.ListingId] = cached;
                }
            }
            else
            {
                missing.Add(entry);
            }
        }

        IndexMeters.SearchPageListings.Add(page.Count - missing.Count, new KeyValuePair<string, object?>("source", "cache"));
        if (missing.Count == 0)
        {
            return byId;
        }

        IndexMeters.SearchPageListings.Add(missing.Count, new KeyValuePair<string, object?>("source", "store"));
        var fetched = await Task.WhenAll(missing
            .GroupBy(h => h.Shard)
            .Select(g => store.GetManyAsync(g.Key, [.. g.Select(h => h.Hit.ListingId)])));
        foreach (var listing in fetched.SelectMany(f => f))
        {
            if (listing.Withdrawn || listing.ExpiresMs <= now)
            {
                continue;
            }

            byId[listing.ListingId] = listing;
            _pages?.Set(listing.ListingId, listing, new MemoryCacheEntryOptions { Size = listing.Envelope.Length + CachedListingOverhead });
        }

        return byId;
    }

    /// <summary>What a cached listing costs besides its envelope (its record, id and the cache's entry), in bytes.</summary>
    private const int CachedListingOverhead = 256;

    public void Dispose() => _pages?.Dispose();

    /// <summary>Every listing version the shards hold, live or not (for reconciling with other clusters).</summary>
    public async Task<IReadOnlyList<HeldVersion>> VersionsAsync()
    {
        var shards = await Task.WhenAll(_shards.Select(s => s.Versions()));
        return [.. shards.SelectMany(s => s)];
    }

    /// <summary>Each shard's generation, in shard order: equal lists mean <see cref="VersionsAsync"/> would answer as before.</summary>
    public async Task<ImmutableArray<ShardGeneration>> GenerationsAsync() =>
        [.. await Task.WhenAll(_shards.Select(s => s.Generation()))];

    /// <summary>Activates every shard (rebuilding each from storage); returns the listings they hold.</summary>
    public async Task<int> WarmUpAsync()
    {
        var counts = await Task.WhenAll(Enumerable.Range(0, ShardCount).Select(i => _shards[i].Count()));
        return counts.Sum();
    }

    /// <summary>The same total order the shards sort by, so merging never reorders a shard's own hits.</summary>
    public static IComparer<ShardHit> Comparer(SearchOrder order) => Comparer<ShardHit>.Create((a, b) =>
    {
        var first = order switch
        {
            SearchOrder.PriceAscending or SearchOrder.Distance => a.SortKey.CompareTo(b.SortKey),
            SearchOrder.PriceDescending or SearchOrder.Newest => b.SortKey.CompareTo(a.SortKey),
            _ => b.Score.CompareTo(a.Score),
        };
        return first != 0 ? first : string.CompareOrdinal(a.ListingId, b.ListingId);
    });
}
