using Hybrid.Index.Listings;
using Hybrid.Supernode.Storage;
using Hybrid.Testing;
using StackExchange.Redis;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A page of search results is read from the listing store in one batch (the shards keep no
/// envelopes in memory): both stores return exactly the listings asked for that they hold, as
/// last stored, withdrawn ones included (the shard decides what is served).
/// </summary>
public sealed class ListingStoreTests
{
    private static StoredListing Listing(string id, ulong version = 1, bool withdrawn = false) =>
        new(id, "seller-" + id, version, 1_900_000_000_000, withdrawn, [(byte)version, 1, 2, 3]);

    private static async Task AssertBatchReadsAsync(IListingStore store)
    {
        await store.SaveAsync(0, Listing("a"));
        await store.SaveAsync(0, Listing("b"));
        await store.SaveAsync(0, Listing("b", version: 2, withdrawn: true));
        await store.SaveAsync(0, Listing("c"));
        await store.SaveAsync(1, Listing("d"));

        var page = await store.GetManyAsync(0, ["c", "missing", "b", "a"]);

        var byId = page.ToDictionary(l => l.ListingId);
        Assert.Equal(["a", "b", "c"], byId.Keys.Order());
        Assert.Equal(Listing("a").Envelope, byId["a"].Envelope);
        Assert.True(byId["b"].Withdrawn);
        Assert.Equal(2ul, byId["b"].Version);
        Assert.Equal("seller-c", byId["c"].Seller);
        Assert.Empty(await store.GetManyAsync(0, []));
        Assert.Empty(await store.GetManyAsync(1, ["a"]));
    }

    [Fact]
    public async Task TheEmbeddedStoreReadsAPageOfListingsInOneBatch()
    {
        using var temp = new TempDir();
        await using var database = new SqliteDatabase(temp.Sub("index.db"));
        await AssertBatchReadsAsync(new SqliteListingStore(database));
    }

    [Fact]
    public async Task TheRedisStoreReadsAPageOfListingsInOneBatch()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        await AssertBatchReadsAsync(new RedisListingStore(connection, "store-test"));
    }
}
