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
        new(id, "seller-" + id, version, 1_900_000_000_000, withdrawn, [(byte)version, 1, 2, 3], withdrawn ? [9, 9, (byte)version] : null);

    private static async Task AssertBatchReadsAsync(IListingStore store)
    {
        var claim = await store.ClaimAsync(0);
        await store.SaveAsync(0, Listing("a"), claim);
        await store.SaveAsync(0, Listing("b"), claim);
        await store.SaveAsync(0, Listing("b", version: 2, withdrawn: true), claim);
        await store.SaveAsync(0, Listing("c") with { Origin = "cluster-of-c" }, claim);
        await store.SaveAsync(1, Listing("d"), await store.ClaimAsync(1));

        var page = await store.GetManyAsync(0, ["c", "missing", "b", "a"]);

        var byId = page.ToDictionary(l => l.ListingId);
        Assert.Equal(["a", "b", "c"], byId.Keys.Order());
        Assert.Equal(Listing("a").Envelope, byId["a"].Envelope);
        Assert.True(byId["b"].Withdrawn);
        Assert.Equal([9, 9, 2], byId["b"].Withdrawal);
        Assert.Null(byId["a"].Withdrawal);
        Assert.Equal(2ul, byId["b"].Version);
        Assert.Equal("seller-c", byId["c"].Seller);
        Assert.Equal("cluster-of-c", byId["c"].Origin);
        Assert.Null(byId["a"].Origin);
        Assert.Empty(await store.GetManyAsync(0, []));
        Assert.Empty(await store.GetManyAsync(1, ["a"]));
    }

    /// <summary>A write at the stored version or an older one is refused, and says so: the shard answers from what is stored.</summary>
    private static async Task AssertNeverBackwardsAsync(IListingStore store)
    {
        var claim = await store.ClaimAsync(0);
        Assert.True(await store.SaveAsync(0, Listing("x", version: 2), claim));
        Assert.False(await store.SaveAsync(0, Listing("x", version: 2, withdrawn: true), claim));
        Assert.False(await store.SaveAsync(0, Listing("x", version: 1, withdrawn: true), claim));
        Assert.Equal((2ul, false), ((await store.GetAsync(0, "x"))!.Version, (await store.GetAsync(0, "x"))!.Withdrawn));
        Assert.True(await store.SaveAsync(0, Listing("x", version: 3, withdrawn: true), claim));
        Assert.Equal((3ul, true), ((await store.GetAsync(0, "x"))!.Version, (await store.GetAsync(0, "x"))!.Withdrawn));
    }

    /// <summary>
    /// Once a shard is claimed anew (it activated elsewhere), a write with the older claim stores
    /// nothing, new listing or newer version alike, and says so; the shard's other claims are its own.
    /// </summary>
    private static async Task AssertOnlyTheLatestClaimWritesAsync(IListingStore store)
    {
        Assert.Equal(0, await store.ClaimOfAsync(5));
        var first = await store.ClaimAsync(5);
        Assert.True(await store.SaveAsync(5, Listing("y"), first));
        var second = await store.ClaimAsync(5);
        Assert.True(second > first);
        Assert.Equal(second, await store.ClaimOfAsync(5));

        var refused = await Assert.ThrowsAsync<Orleans.Storage.InconsistentStateException>(() => store.SaveAsync(5, Listing("z"), first));
        Assert.Contains("moved to another supernode", refused.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<Orleans.Storage.InconsistentStateException>(() => store.SaveAsync(5, Listing("y", version: 2), first));
        Assert.Null(await store.GetAsync(5, "z"));
        Assert.Equal(1ul, (await store.GetAsync(5, "y"))!.Version);

        Assert.True(await store.SaveAsync(5, Listing("z"), second));
        Assert.True(await store.SaveAsync(6, Listing("w"), await store.ClaimAsync(6)));
        Assert.Equal(second, await store.ClaimOfAsync(5));
    }

    /// <summary>Runs <paramref name="assert"/> on an embedded store and on a cluster's, each new.</summary>
    private static async Task OnBothStoresAsync(Func<IListingStore, Task> assert)
    {
        using var temp = new TempDir();
        await using var database = new SqliteDatabase(temp.Sub("index.db"));
        await assert(new SqliteListingStore(database));
        await using var redis = await RedisServer.StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        await assert(new RedisListingStore(connection, "store-test"));
    }

    [Fact]
    public Task NeitherStoreTakesAWriteFromAShardActivationWhoseShardWasClaimedSince() => OnBothStoresAsync(AssertOnlyTheLatestClaimWritesAsync);

    [Fact]
    public Task NeitherStoreTakesAListingBackToItsStoredVersionOrAnOlderOneAndEachSaysSo() => OnBothStoresAsync(AssertNeverBackwardsAsync);

    [Fact]
    public async Task TheEmbeddedStoreReadsAPageOfListingsInOneBatch()
    {
        using var temp = new TempDir();
        await using var database = new SqliteDatabase(temp.Sub("index.db"));
        await AssertBatchReadsAsync(new SqliteListingStore(database));
    }

    [Fact]
    public async Task AnEmbeddedStoreMadeBeforeWithdrawalsWereKeptOpensWithItsListingsIntact()
    {
        using var temp = new TempDir();
        var path = temp.Sub("old.db");
        await using (var old = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path}"))
        {
            await old.OpenAsync();
            await using var command = old.CreateCommand();
            command.CommandText = """
                CREATE TABLE listings (listing_id TEXT NOT NULL PRIMARY KEY, shard INTEGER NOT NULL, seller TEXT NOT NULL,
                    version INTEGER NOT NULL, expires_ms INTEGER NOT NULL, withdrawn INTEGER NOT NULL, envelope BLOB NOT NULL) WITHOUT ROWID;
                INSERT INTO listings VALUES ('kept', 0, 'seller-kept', 3, 1900000000000, 1, x'0102');
                """;
            await command.ExecuteNonQueryAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        await using var database = new SqliteDatabase(path);
        var store = new SqliteListingStore(database);
        var kept = Assert.Single(await store.GetManyAsync(0, ["kept"]));
        Assert.Equal((3ul, true, (byte[]?)null), (kept.Version, kept.Withdrawn, kept.Withdrawal));
        await store.SaveAsync(0, Listing("kept", version: 4, withdrawn: true), await store.ClaimAsync(0));
        Assert.Equal([9, 9, 4], (await store.GetAsync(0, "kept"))!.Withdrawal);
    }

    [Fact]
    public void AListingStoredInRedisBeforeWithdrawalsWereKeptStillReads()
    {
        // Format 1: version byte, id, seller, version, expiry, withdrawn, envelope length and bytes.
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer))
        {
            writer.Write((byte)1);
            writer.Write("old");
            writer.Write("seller-old");
            writer.Write(5ul);
            writer.Write(1_900_000_000_000L);
            writer.Write(true);
            writer.Write(2);
            writer.Write(new byte[] { 7, 8 });
        }

        var read = StoredListingCodec.Decode(buffer.ToArray());
        Assert.Equal(("old", 5ul, true, (byte[]?)null), (read.ListingId, read.Version, read.Withdrawn, read.Withdrawal));
        var again = StoredListingCodec.Decode(StoredListingCodec.Encode(Listing("new", version: 6, withdrawn: true)));
        Assert.Equal([9, 9, 6], again.Withdrawal);
    }

    [Fact]
    public async Task TheRedisStoreReadsAPageOfListingsInOneBatch()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        await AssertBatchReadsAsync(new RedisListingStore(connection, "store-test"));
    }
}
