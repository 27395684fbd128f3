using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.TestingHost;

using static Hybrid.Index.Tests.ShardListings;

namespace Hybrid.Index.Tests;

/// <summary>
/// A supernode searches the shards it holds in place, without a grain call, and gets the same page
/// its grains would give; a shard that has left while searched is asked through its grain.
/// </summary>
public sealed class LocalShardsTests(GrainHost host) : IClassFixture<GrainHost>
{
    private LocalShards SiloShards => (host.Cluster.Primary as InProcessSiloHandle ?? throw new InvalidOperationException("the test cluster's silo is not in this process"))
        .SiloHost.Services.GetRequiredService<LocalShards>();

    [Fact]
    public async Task ShardsHeldHereAreSearchedInPlaceAndAnswerAsTheirGrainsDo()
    {
        using var seller = PeerIdentity.Generate();
        var options = Options.Create(new SearchOptions { Shards = 2 });
        using var called = new ShardedSearch(host.Grains, FaultyStores.Listings, TimeProvider.System, options);
        foreach (var title in new[] { "Numbat plush toy", "Numbat mug", "Numbat poster, framed", "Large numbat cushion", "Numbat sticker set", "Numbat keyring" })
        {
            var listing = ListingFactory.Listing(title);
            Assert.True((await called.ShardOf(listing.ListingId).Publish(Stored(seller, listing))).Succeeded);
        }

        await called.WarmUpAsync();
        // Both shards rebuilt on this silo and joined its fan-out. The search in place goes through
        // them (counted here), never through a grain call, and gives the grains' page.
        var searched = 0;
        var counted = new LocalShards();
        foreach (var shard in new[] { 0, 1 })
        {
            Assert.True(SiloShards.TryGet(shard, out var searcher), $"shard {shard} is not searchable in place on the silo holding it");
            counted.Join(shard, (query, take) =>
            {
                Interlocked.Increment(ref searched);
                return searcher(query, take);
            });
        }

        using var inPlace = new ShardedSearch(host.Grains, FaultyStores.Listings, TimeProvider.System, options, counted);
        var expected = await called.SearchAsync(Query("numbat"), 0, 4);
        var page = await inPlace.SearchAsync(Query("numbat"), 0, 4);
        Assert.Equal(2, searched);
        Assert.Equal(6, page.TotalHits);
        Assert.Equal(expected.Hits.Select(h => (h.Listing.ListingId, h.Score)), page.Hits.Select(h => (h.Listing.ListingId, h.Score)));
        Assert.Equal(expected.HasMore, page.HasMore);
    }

    [Fact]
    public async Task AShardThatLeftWhileSearchedIsAskedThroughItsGrainAndNoLongerSearchedInPlace()
    {
        using var seller = PeerIdentity.Generate();
        var options = Options.Create(new SearchOptions { Shards = 1 });
        var leaving = new LocalShards();
        var tried = 0;
        leaving.Join(0, (_, _) =>
        {
            Interlocked.Increment(ref tried);
            throw new ObjectDisposedException("shard index");
        });
        using var search = new ShardedSearch(host.Grains, FaultyStores.Listings, TimeProvider.System, options, leaving);
        var listing = ListingFactory.Listing("Wombat doorstop, cast iron");
        Assert.True((await search.ShardOf(listing.ListingId).Publish(Stored(seller, listing))).Succeeded);

        var page = await search.SearchAsync(Query("wombat doorstop"), 0, 10);
        Assert.Equal(listing.ListingId, Assert.Single(page.Hits).Listing.ListingId);
        Assert.Equal((1, 0), (tried, leaving.Count));

        // Asked again: straight to the grain.
        Assert.Single((await search.SearchAsync(Query("wombat doorstop"), 0, 10)).Hits);
        Assert.Equal(1, tried);
    }
}
