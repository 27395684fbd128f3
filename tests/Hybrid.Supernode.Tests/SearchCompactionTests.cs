using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Every query pays per Lucene segment, and writes searched as they come leave a small segment
/// each: a shard that has gone quiet folds its small segments into one, and searches find the same
/// listings afterwards.
/// </summary>
public sealed class SearchCompactionTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task AQuietShardFoldsTheSmallSegmentsLeftByWritesSearchedAsTheyCameAndFindsTheSameListings()
    {
        await using var node = await SupernodeProcess.StartAsync(_temp.Sub("sn"));
        using var seller = PeerIdentity.Generate();
        // A body of listings indexed together (one segment a shard), then a few more, each searched
        // at once (one small segment each).
        await Parallel.ForEachAsync(Enumerable.Range(0, 60), async (i, ct) =>
            await node.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, ListingFactory.Listing($"Oak stool {i}")), cancellationToken: ct));
        Assert.Equal(60, (await node.Client.Listings.SearchAsync(new SearchRequest { Text = "oak", Limit = 100 })).TotalHits);
        // Four for each of the two shards (listings go to the shard their id hashes to).
        var benches = Enumerable.Range(0, 200).Select(i => ListingFactory.Listing($"Oak bench {i}"))
            .GroupBy(l => Index.Listings.ListingShards.Of(l.ListingId, 2)).SelectMany(g => g.Take(4)).ToList();
        Assert.Equal(8, benches.Count);
        foreach (var bench in benches)
        {
            await node.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, bench));
            await node.Client.Listings.SearchAsync(new SearchRequest { Text = "oak", Limit = 100 });
        }

        Assert.Equal(10, await node.MetricAsync("hybrid_search_index_segments"));

        // Quiet from here: within two sweeps (30 s each) each shard folds its small segments.
        await Eventually.TrueAsync(async () => await node.MetricAsync("hybrid_search_index_compactions") >= 1, TimeSpan.FromSeconds(100), "a quiet shard to fold its small segments");
        await Eventually.TrueAsync(async () => await node.MetricAsync("hybrid_search_index_segments") <= 4, TimeSpan.FromSeconds(40), "both shards to be down to their large segment and one small one");
        var found = await node.Client.Listings.SearchAsync(new SearchRequest { Text = "oak", Limit = 100 });
        Assert.Equal(68, found.TotalHits);
        Assert.Equal(68, found.Hits.Select(h => h.Record.Listing.ListingId).Distinct().Count());
    }
}
