using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;
using Microsoft.Extensions.Options;

using static Hybrid.Index.Tests.ShardListings;

namespace Hybrid.Index.Tests;

/// <summary>
/// A page of results searched again is served from the listings kept from recent pages, without a
/// store read, but never at another version than the one the shard just matched.
/// </summary>
public sealed class SearchPageCacheTests(GrainHost host) : IClassFixture<GrainHost>
{
    [Fact]
    public async Task APageSearchedAgainIsServedWithoutAStoreReadAndNeverAtAnOlderVersion()
    {
        using var seller = PeerIdentity.Generate();
        var store = new CountingStore(FaultyStores.Listings);
        using var search = new ShardedSearch(host.Grains, store, TimeProvider.System, Options.Create(new SearchOptions { Shards = 1 }));
        var listing = ListingFactory.Listing("Zanzibar clove grinder", price: 30m);
        var shard = search.ShardOf(listing.ListingId);
        Assert.True((await shard.Publish(Stored(seller, listing))).Succeeded);

        var first = await search.SearchAsync(Query("zanzibar grinder"), 0, 10);
        Assert.Equal((1ul, 1), (Assert.Single(first.Hits).Listing.Version, store.Reads));
        var again = await search.SearchAsync(Query("zanzibar grinder"), 0, 10);
        Assert.Equal(first.Hits[0].Listing.Envelope, Assert.Single(again.Hits).Listing.Envelope);
        Assert.Equal(1, store.Reads);

        // A new price at version 2: the page shows it, read from the store, not the kept version 1.
        var cheaper = listing.Clone();
        cheaper.Price = Protocol.Listings.ListingRules.ParseMoney("20", "EUR");
        Assert.True((await shard.Publish(Stored(seller, cheaper, version: 2))).Succeeded);
        var repriced = Assert.Single((await search.SearchAsync(Query("zanzibar grinder"), 0, 10)).Hits).Listing;
        Assert.Equal((2ul, 2), (repriced.Version, store.Reads));
        Assert.NotEqual(first.Hits[0].Listing.Envelope, repriced.Envelope);

        // Withdrawn: gone from the page at once, whatever is kept.
        Assert.True((await shard.Withdraw(listing.ListingId, seller.Id.ToString(), 3, [1, 2, 3])).Succeeded);
        Assert.Empty((await search.SearchAsync(Query("zanzibar grinder"), 0, 10)).Hits);
    }

    [Fact]
    public async Task WithNoPageCacheEveryPageIsReadFromTheStore()
    {
        using var seller = PeerIdentity.Generate();
        var store = new CountingStore(FaultyStores.Listings);
        using var search = new ShardedSearch(host.Grains, store, TimeProvider.System, Options.Create(new SearchOptions { Shards = 1, PageCacheBytes = 0 }));
        var listing = ListingFactory.Listing("Quokka plush toy");
        Assert.True((await search.ShardOf(listing.ListingId).Publish(Stored(seller, listing))).Succeeded);

        for (var round = 1; round <= 3; round++)
        {
            Assert.Single((await search.SearchAsync(Query("quokka"), 0, 10)).Hits);
            Assert.Equal(round, store.Reads);
        }
    }


    /// <summary>The listing store, counting the page reads made through it.</summary>
    private sealed class CountingStore(IListingStore inner) : IListingStore
    {
        private int _reads;

        public int Reads => Volatile.Read(ref _reads);

        public Task<long> ClaimAsync(int shard) => inner.ClaimAsync(shard);

        public Task<long> ClaimOfAsync(int shard) => inner.ClaimOfAsync(shard);

        public Task<bool> SaveAsync(int shard, StoredListing listing, long claim) => inner.SaveAsync(shard, listing, claim);

        public Task<StoredListing?> GetAsync(int shard, string listingId) => inner.GetAsync(shard, listingId);

        public Task<IReadOnlyList<StoredListing>> GetManyAsync(int shard, IReadOnlyList<string> listingIds)
        {
            Interlocked.Increment(ref _reads);
            return inner.GetManyAsync(shard, listingIds);
        }

        public IAsyncEnumerable<StoredListing> ReadShardAsync(int shard, CancellationToken cancellationToken) => inner.ReadShardAsync(shard, cancellationToken);
    }
}
