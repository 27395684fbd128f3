using Hybrid.Index.Storage;
using Hybrid.Supernode.Storage;
using Hybrid.Testing;
using Orleans.Storage;
using StackExchange.Redis;

namespace Hybrid.Supernode.Tests;

/// <summary>Both item stores take a claimed write only from the owner's latest claim, and unclaimed writes as before.</summary>
public sealed class ItemStoreTests
{
    private static async Task AssertOnlyTheLatestClaimWritesAsync(IItemStore store)
    {
        var first = await store.ClaimAsync("mailbox/peer-1");
        await store.PutAsync("mailbox/peer-1", "a", new byte[] { 1 }, first);
        await store.PutAsync("mailbox-delivered/peer-1", "d", new byte[] { 4 }, first);
        var second = await store.ClaimAsync("mailbox/peer-1");
        Assert.True(second.Number > first.Number);

        // The older claim writes nothing more, in any of the owner's sets, and removes nothing.
        var refused = await Assert.ThrowsAsync<InconsistentStateException>(() => store.PutAsync("mailbox/peer-1", "b", new byte[] { 2 }, first));
        Assert.Contains("mailbox/peer-1 has moved to another supernode", refused.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InconsistentStateException>(() => store.RemoveAsync("mailbox/peer-1", "a", first));
        await Assert.ThrowsAsync<InconsistentStateException>(() => store.PutAsync("mailbox-delivered/peer-1", "e", new byte[] { 5 }, first));
        Assert.Null(await store.GetAsync("mailbox/peer-1", "b"));
        Assert.Null(await store.GetAsync("mailbox-delivered/peer-1", "e"));
        Assert.Equal([1], await store.GetAsync("mailbox/peer-1", "a"));

        // The latest claim writes; other owners and unclaimed writes are untouched by it.
        await store.PutAsync("mailbox/peer-1", "b", new byte[] { 2 }, second);
        await store.RemoveAsync("mailbox/peer-1", "a", second);
        await store.PutAsync("mailbox/peer-2", "x", new byte[] { 3 }, await store.ClaimAsync("mailbox/peer-2"));
        await store.PutAsync("trust-inputs", "r", new byte[] { 6 });
        Assert.Equal(["b"], await FieldsAsync(store, "mailbox/peer-1"));
        Assert.Equal(["x"], await FieldsAsync(store, "mailbox/peer-2"));
        Assert.Equal(["r"], await FieldsAsync(store, "trust-inputs"));
    }

    private static async Task<List<string>> FieldsAsync(IItemStore store, string itemSet)
    {
        var fields = new List<string>();
        await foreach (var (field, _) in store.ReadAllAsync(itemSet, CancellationToken.None))
        {
            fields.Add(field);
        }

        return fields;
    }

    [Fact]
    public async Task TheEmbeddedStoreTakesAClaimedWriteOnlyFromTheLatestClaim()
    {
        using var temp = new TempDir();
        await using var database = new SqliteDatabase(temp.Sub("index.db"));
        await AssertOnlyTheLatestClaimWritesAsync(new SqliteItemStore(database));
    }

    [Fact]
    public async Task TheClusterStoreTakesAClaimedWriteOnlyFromTheLatestClaimAndLetsAClaimLapseAfterAMonth()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        await AssertOnlyTheLatestClaimWritesAsync(new RedisItemStore(connection, "items-test"));

        // A peer who never comes back leaves no claim behind for good.
        var server = connection.GetServer(connection.GetEndPoints()[0]);
        var claims = server.Keys(pattern: "*:claim:mailbox/*").ToList();
        Assert.Equal(2, claims.Count);
        foreach (var key in claims)
        {
            Assert.InRange(await connection.GetDatabase().KeyTimeToLiveAsync(key) ?? TimeSpan.Zero, TimeSpan.FromDays(29), TimeSpan.FromDays(30));
        }
    }
}
