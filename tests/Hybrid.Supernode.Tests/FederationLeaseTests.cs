using Hybrid.Index.Federation;
using Hybrid.Supernode.Storage;
using Hybrid.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Serialization;
using Orleans.Storage;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Only one supernode of a cluster pulls from the peer clusters. While membership converges
/// (a silo joining moves the grain directory) the lease grain can briefly have two activations;
/// two activations over one store must still grant the lease to one supernode only.
/// </summary>
public sealed class FederationLeaseTests
{
    private static readonly TimeSpan Length = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TwoActivationsOfTheFederationLeaseNeverGrantItToTwoSupernodes()
    {
        await using var store = new LeaseStore();
        var storage = store.Storage;
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        var first = new FederationLeaseGrain(new StoredState<FederationLeaseState>(storage), time);
        var second = new FederationLeaseGrain(new StoredState<FederationLeaseState>(storage), time);

        Assert.True(await first.Hold("node-0", Length));
        Assert.False(await second.Hold("node-1", Length));
        Assert.True(await second.Hold("node-0", Length)); // the holder renews through either activation
        Assert.False(await first.Hold("node-1", Length));

        // Once the holder stops asking, the lease passes to the next that asks, whichever activation it asks.
        time.Advance(Length);
        Assert.True(await first.Hold("node-1", Length));
        Assert.False(await second.Hold("node-0", Length));

        // Asked of both activations at the same moment after it lapsed: granted once.
        for (var round = 0; round < 50; round++)
        {
            time.Advance(Length);
            var grants = await Task.WhenAll(
                Task.Run(() => first.Hold("node-0", Length)),
                Task.Run(() => second.Hold("node-1", Length)));
            Assert.True(grants.Count(g => g) <= 1, $"round {round}: the lease was granted to both supernodes");
        }
    }

    [Fact]
    public async Task TheHolderRenewsTheLeaseOnlyOnceHalfOfItHasRun()
    {
        await using var store = new LeaseStore();
        var storage = store.Storage;
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        var state = new StoredState<FederationLeaseState>(storage);
        var lease = new FederationLeaseGrain(state, time);
        var other = new FederationLeaseGrain(new StoredState<FederationLeaseState>(storage), time);

        Assert.True(await lease.Hold("node-0", Length));
        Assert.Equal(1, state.Writes);

        // Asked every second for the first half of the lease: held, and nothing written.
        for (var second = 1; second < Length.TotalSeconds / 2; second++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.True(await lease.Hold("node-0", Length), $"held at {second} s");
        }

        Assert.Equal(1, state.Writes);

        // Past half of it, the next ask renews it for a whole length from then.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await lease.Hold("node-0", Length));
        Assert.Equal(2, state.Writes);
        time.Advance(Length - TimeSpan.FromSeconds(1));
        Assert.False(await other.Hold("node-1", Length));

        // And it still lapses when the holder stops asking.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await other.Hold("node-1", Length));
        Assert.False(await lease.Hold("node-0", Length));
    }

    /// <summary>A real grain storage on an embedded store in a folder of its own, as a supernode keeps the lease.</summary>
    private sealed class LeaseStore : IAsyncDisposable
    {
        private readonly TempDir _temp = new();
        private readonly SqliteDatabase _database;
        private readonly ServiceProvider _services = new ServiceCollection().AddSerializer().BuildServiceProvider();

        public LeaseStore()
        {
            _database = new SqliteDatabase(_temp.Sub("index.db"));
            Storage = new SqliteGrainStorage(_database, new OrleansGrainStorageSerializer(_services.GetRequiredService<Serializer>()));
        }

        public IGrainStorage Storage { get; }

        public async ValueTask DisposeAsync()
        {
            await _services.DisposeAsync();
            await _database.DisposeAsync();
            _temp.Dispose();
        }
    }

    /// <summary>A grain's durable state read and written through a real grain storage, as the runtime does.</summary>
    private sealed class StoredState<T>(IGrainStorage storage) : IPersistentState<T>, IGrainState<T>
        where T : new()
    {
        private static readonly GrainId Id = GrainId.Create("federation-lease", "0");

        public T State { get; set; } = new();

        [System.Diagnostics.CodeAnalysis.AllowNull]
        T IGrainState<T>.State { get => State; set => State = value ?? new T(); }

        public string? Etag { get; private set; }

        string? IGrainState<T>.ETag { get => Etag; set => Etag = value; }

        public bool RecordExists { get; set; }

        public Task ReadStateAsync() => storage.ReadStateAsync("federation-lease", Id, this);

        /// <summary>Writes made through this state.</summary>
        public int Writes { get; private set; }

        public Task WriteStateAsync()
        {
            Writes++;
            return storage.WriteStateAsync("federation-lease", Id, this);
        }

        public Task ClearStateAsync() => storage.ClearStateAsync("federation-lease", Id, this);
    }
}
