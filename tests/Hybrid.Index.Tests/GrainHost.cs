using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Hybrid.Index.Listings;
using Hybrid.Index.Reputation;
using Hybrid.Index.Search;
using Hybrid.Index.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Hybrid.Index.Tests;

/// <summary>
/// An in-process Orleans cluster (TestingHost) running the index grains over stores that live
/// outside the silo (so state outlives a grain's deactivation) and fail on demand.
/// </summary>
public sealed class GrainHost : IAsyncLifetime
{
    /// <summary>The peer the trust tests pre-trust.</summary>
    public const string PreTrusted = "pretrusted-peer";

    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.Client;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(1);
        builder.AddSiloBuilderConfigurator<Configurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    internal sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Services.AddSingleton(TimeProvider.System);
            siloBuilder.Services.Configure<TrustOptions>(o =>
            {
                o.PreTrusted = [PreTrusted];
                // Long: the tests see recomputed trust only from a fresh activation, which computes it from the stored inputs.
                o.RecomputeInterval = TimeSpan.FromHours(1);
            });
            // Shards sweep often, so a test sees one learn within a second or two that its shard moved.
            siloBuilder.Services.Configure<SearchOptions>(o => o.SweepInterval = TimeSpan.FromMilliseconds(500));
            // Items shared by every cluster of the test run, claims each cluster's own (see ForCluster).
            siloBuilder.Services.AddSingleton<IItemStore>(sp => FaultyStores.Items.ForCluster(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Orleans.Configuration.ClusterOptions>>().Value.ClusterId));
            siloBuilder.Services.AddSingleton<IListingStore>(FaultyStores.Listings);
            siloBuilder.Services.AddSingleton<IRankingSignal>(new NeutralRanking());
            siloBuilder.Services.AddSingleton(Synonyms.Default);
            siloBuilder.Services.AddSingleton(new ListingQuotas(1_000_000, 1L << 40, 1_000_000, 1L << 40));
            siloBuilder.Services.AddKeyedSingleton<IGrainStorage>(IndexStorage.ProviderName, (sp, _) => new FaultyGrainStorage(sp.GetRequiredService<DeepCopier>()));
        }
    }
}

/// <summary>The stores behind <see cref="GrainHost"/>: kept in this process, failing the next write of a name on demand.</summary>
public static class FaultyStores
{
    private static readonly ConcurrentDictionary<string, int> Failures = new(StringComparer.Ordinal);

    /// <summary>The item store every silo of the host uses.</summary>
    public static MemoryItemStore Items { get; } = new();

    /// <summary>The listing store every silo of the host uses (failing writes are named "listings").</summary>
    public static MemoryListingStore Listings { get; } = new();

    /// <summary>Grain states, by grain id and state name.</summary>
    internal static ConcurrentDictionary<(string Grain, string State), object> States { get; } = new();

    /// <summary>Makes the next <paramref name="count"/> writes of state <paramref name="stateName"/> (or item set) fail.</summary>
    public static void FailNextWrites(string stateName, int count = 1) => Failures[stateName] = count;

    /// <summary>Makes the next <paramref name="count"/> writes of <paramref name="name"/> land and then fail as if their answer was lost.</summary>
    public static void LoseNextAnswers(string name, int count = 1) => LostAnswers[name] = count;

    internal static void ThrowIfFailing(string name)
    {
        if (Take(Failures, name))
        {
            throw new IOException($"injected storage failure writing {name}");
        }
    }

    internal static void ThrowIfAnswerLost(string name)
    {
        if (Take(LostAnswers, name))
        {
            throw new IOException($"injected loss of the answer to a write of {name} that landed");
        }
    }

    private static readonly ConcurrentDictionary<string, int> LostAnswers = new(StringComparer.Ordinal);

    private static bool Take(ConcurrentDictionary<string, int> faults, string name) =>
        faults.TryGetValue(name, out var left) && left > 0 && faults.TryUpdate(name, left - 1, left);
}

/// <summary>Item sets in memory, shared by every silo of the host.</summary>
public sealed class MemoryItemStore : IItemStore
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte[]>> _sets = new(StringComparer.Ordinal);

    private long _bytesWritten;

    /// <summary>Bytes written by every put so far.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    private readonly Dictionary<string, long> _claims = new(StringComparer.Ordinal);

    public Task<StoreClaim> ClaimAsync(string owner)
    {
        lock (_claims)
        {
            return Task.FromResult(new StoreClaim(owner, _claims[owner] = _claims.GetValueOrDefault(owner) + 1));
        }
    }

    public Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value, StoreClaim? claim = null)
    {
        FaultyStores.ThrowIfFailing(itemSet);
        lock (_claims)
        {
            RequireLatest(claim);
            Interlocked.Add(ref _bytesWritten, value.Length);
            _sets.GetOrAdd(itemSet, _ => new(StringComparer.Ordinal))[field] = value.ToArray();
        }

        return Task.CompletedTask;
    }

    public Task RemoveAsync(string itemSet, string field, StoreClaim? claim = null)
    {
        FaultyStores.ThrowIfFailing(itemSet);
        lock (_claims)
        {
            RequireLatest(claim);
            if (_sets.TryGetValue(itemSet, out var items))
            {
                items.TryRemove(field, out _);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// The store as the silos of cluster <paramref name="clusterId"/> use it: the items are this
    /// store's, but the cluster's claims are its own. Test classes run their clusters at once, each
    /// with its own singleton grains (the trust graph); sharing claims, one cluster's grain would
    /// supersede the other's, as two activations of one grain in one cluster rightly do.
    /// </summary>
    public IItemStore ForCluster(string clusterId) => new ClusterView(this, clusterId);

    private sealed class ClusterView(MemoryItemStore shared, string clusterId) : IItemStore
    {
        public Task<StoreClaim> ClaimAsync(string owner) => shared.ClaimAsync($"{clusterId}/{owner}");

        public Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value, StoreClaim? claim = null) => shared.PutAsync(itemSet, field, value, claim);

        public Task RemoveAsync(string itemSet, string field, StoreClaim? claim = null) => shared.RemoveAsync(itemSet, field, claim);

        public Task<byte[]?> GetAsync(string itemSet, string field) => shared.GetAsync(itemSet, field);

        public IAsyncEnumerable<KeyValuePair<string, byte[]>> ReadAllAsync(string itemSet, CancellationToken cancellationToken) => shared.ReadAllAsync(itemSet, cancellationToken);
    }

    // As the real stores do: a claimed write only while its claim is its owner's latest.
    private void RequireLatest(StoreClaim? claim)
    {
        if (claim is { } held && _claims.GetValueOrDefault(held.Owner) is var latest && latest != held.Number)
        {
            throw StoreClaim.Superseded(held.Owner, held.Number, latest);
        }
    }

    public Task<byte[]?> GetAsync(string itemSet, string field) =>
        Task.FromResult(_sets.TryGetValue(itemSet, out var items) && items.TryGetValue(field, out var value) ? value : null);

    public async IAsyncEnumerable<KeyValuePair<string, byte[]>> ReadAllAsync(string itemSet, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        if (_sets.TryGetValue(itemSet, out var items))
        {
            foreach (var item in items)
            {
                yield return item;
            }
        }
    }
}

/// <summary>Listings in memory, shared by every silo of the host.</summary>
public sealed class MemoryListingStore : IListingStore
{
    private readonly ConcurrentDictionary<(int Shard, string Id), StoredListing> _listings = new();
    private readonly ConcurrentDictionary<int, long> _claims = new();

    public Task<long> ClaimAsync(int shard)
    {
        lock (_claims)
        {
            return Task.FromResult(_claims[shard] = _claims.GetValueOrDefault(shard) + 1);
        }
    }

    public Task<long> ClaimOfAsync(int shard) => Task.FromResult(_claims.GetValueOrDefault(shard));

    public Task<bool> SaveAsync(int shard, StoredListing listing, long claim)
    {
        ArgumentNullException.ThrowIfNull(listing);
        FaultyStores.ThrowIfFailing("listings");
        // As the real stores do: only from the shard's latest claim, never back to an older version, atomically.
        var stored = false;
        lock (_claims)
        {
            if (_claims.GetValueOrDefault(shard) is var latest && latest != claim)
            {
                throw StoreClaim.Superseded(StoreClaim.Listings(shard), claim, latest);
            }

            _listings.AddOrUpdate(
                (shard, listing.ListingId),
                _ => { stored = true; return listing; },
                (_, held) => { stored = listing.Version > held.Version; return stored ? listing : held; });
        }

        FaultyStores.ThrowIfAnswerLost("listings");
        return Task.FromResult(stored);
    }

    public Task<StoredListing?> GetAsync(int shard, string listingId) =>
        Task.FromResult(_listings.TryGetValue((shard, listingId), out var listing) ? listing : null);

    public Task<IReadOnlyList<StoredListing>> GetManyAsync(int shard, IReadOnlyList<string> listingIds)
    {
        ArgumentNullException.ThrowIfNull(listingIds);
        FaultyStores.ThrowIfFailing("listings");
        IReadOnlyList<StoredListing> found = [.. listingIds.Select(id => _listings.GetValueOrDefault((shard, id))).OfType<StoredListing>()];
        return Task.FromResult(found);
    }

    public async IAsyncEnumerable<StoredListing> ReadShardAsync(int shard, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        foreach (var ((s, _), listing) in _listings)
        {
            if (s == shard)
            {
                yield return listing;
            }
        }
    }
}

/// <summary>Grain storage that keeps deep copies (what was written, not the live object) and fails on demand.</summary>
public sealed class FaultyGrainStorage(DeepCopier copier) : IGrainStorage
{
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        if (FaultyStores.States.TryGetValue((grainId.ToString(), stateName), out var stored))
        {
            grainState.State = copier.Copy((T)stored);
            grainState.RecordExists = true;
            grainState.ETag = "1";
        }

        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        FaultyStores.ThrowIfFailing(stateName);
        FaultyStores.States[(grainId.ToString(), stateName)] = copier.Copy(grainState.State)!;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        FaultyStores.States.TryRemove((grainId.ToString(), stateName), out _);
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }
}
