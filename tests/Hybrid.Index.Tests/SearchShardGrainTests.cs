using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;
using Orleans.Core.Internal;

namespace Hybrid.Index.Tests;

/// <summary>The search index is derived from the stored listings: what a shard acknowledged is found after it moves, and a failed write is neither acknowledged nor found.</summary>
public sealed class SearchShardGrainTests(GrainHost host) : IClassFixture<GrainHost>
{
    [Fact]
    public async Task AShardRebuiltFromItsStoreFindsWhatItAcknowledgedAndNothingElse()
    {
        using var seller = PeerIdentity.Generate();
        var shard = host.Grains.GetGrain<ISearchShardGrain>(7);
        var kept = ListingFactory.Listing("Walnut chopping board");
        var failed = ListingFactory.Listing("Walnut serving tray");
        Assert.True((await shard.Publish(Stored(seller, kept))).Succeeded);
        FaultyStores.FailNextWrites("listings");
        await Assert.ThrowsAnyAsync<Exception>(() => shard.Publish(Stored(seller, failed)));

        await shard.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        var hits = await shard.Search(new SearchQuery("walnut", null, null, null, null, null, null, null, null, SearchOrder.Relevance), 10);

        Assert.Equal(kept.ListingId, Assert.Single(hits.Hits).ListingId);
        Assert.Null(await shard.Find(failed.ListingId));
        Assert.Equal(1, await shard.Count());
    }

    private static StoredListing Stored(PeerIdentity seller, Protocol.V1.Listing listing)
    {
        var envelope = ListingFactory.Sign(seller, listing);
        return new StoredListing(listing.ListingId, seller.Id.ToString(), 1, DateTimeOffset.UtcNow.AddDays(30).ToUnixTimeMilliseconds(), false, envelope.ToByteArray());
    }
}
