using System.Buffers.Binary;
using System.Security.Cryptography;
using Hybrid.Index.Listings;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace Hybrid.Index.Search;

/// <summary>
/// One shard of the listing index (key = shard number). Owns the listings whose id hashes to it:
/// orders their versions, writes them to the durable store before acknowledging, and keeps an
/// in-memory Lucene index that it rebuilds from the store when it activates anywhere in the cluster.
/// </summary>
public interface ISearchShardGrain : IGrainWithIntegerKey
{
    /// <summary>Stores and indexes a verified listing version; refuses older versions and other sellers.</summary>
    Task<ListingWriteResult> Publish(StoredListing listing);

    /// <summary>Takes a listing down, with a withdrawal signed by its seller at a newer version.</summary>
    Task<ListingWriteResult> Withdraw(string listingId, string seller, ulong version);

    /// <summary>The stored listing (active, withdrawn or expired), or null.</summary>
    [AlwaysInterleave]
    Task<StoredListing?> Find(string listingId);

    /// <summary>The best <paramref name="take"/> hits of this shard.</summary>
    [AlwaysInterleave]
    Task<ShardHits> Search(SearchQuery query, int take);

    /// <summary>Listings searchable in this shard (activates and rebuilds it if needed).</summary>
    [AlwaysInterleave]
    Task<int> Count();
}

/// <summary>How much a seller's reputation weighs in relevance ranking. 1 is neutral.</summary>
public interface IRankingSignal
{
    double SellerWeight(string seller);
}

/// <summary>Neutral ranking until reputation exists: every seller weighs 1.</summary>
public sealed class NeutralRanking : IRankingSignal
{
    public double SellerWeight(string seller) => 1.0;
}

/// <inheritdoc cref="ISearchShardGrain"/>
[CollectionAgeLimit(AlwaysActive = true)]
public sealed partial class SearchShardGrain(IListingStore store, IRankingSignal ranking, TimeProvider time, ILogger<SearchShardGrain> logger) : Grain, ISearchShardGrain, IDisposable
{
    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(30);
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _sellers = new(StringComparer.Ordinal);
    private readonly ListingIndex _index = new();
    private int Shard => (int)this.GetPrimaryKeyLong();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await foreach (var listing in store.ReadShardAsync(Shard, cancellationToken))
        {
            Remember(listing);
            if (!listing.Withdrawn && listing.ExpiresMs > now)
            {
                _index.Upsert(listing);
            }
        }

        _index.Refresh();
        LogRebuilt(logger, Shard, _entries.Count, clock.ElapsedMilliseconds);
        this.RegisterGrainTimer(SweepExpired, new GrainTimerCreationOptions(SweepInterval, SweepInterval) { Interleave = true });
    }

    public async Task<ListingWriteResult> Publish(StoredListing listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var hash = Hash(listing.Envelope);
        if (_entries.TryGetValue(listing.ListingId, out var current))
        {
            if (current.Seller != listing.Seller)
            {
                return new(ListingOutcome.NotSeller, $"listing {listing.ListingId} belongs to another seller", current.Version);
            }

            if (listing.Version == current.Version && hash == current.Hash)
            {
                return new(ListingOutcome.Unchanged, "this version is already stored", current.Version);
            }

            if (listing.Version <= current.Version)
            {
                return new(ListingOutcome.Replayed, $"version {listing.Version} is not newer than the stored version {current.Version}", current.Version);
            }
        }

        await store.SaveAsync(Shard, listing);
        Remember(listing, hash);
        _index.Upsert(listing);
        return new(ListingOutcome.Applied, "listing stored", listing.Version);
    }

    public async Task<ListingWriteResult> Withdraw(string listingId, string seller, ulong version)
    {
        if (!_entries.TryGetValue(listingId, out var current))
        {
            return new(ListingOutcome.NotFound, $"no listing {listingId}", 0);
        }

        if (current.Seller != seller)
        {
            return new(ListingOutcome.NotSeller, $"only the seller may withdraw listing {listingId}", current.Version);
        }

        if (version <= current.Version)
        {
            return new(ListingOutcome.Replayed, $"withdrawal version {version} is not newer than the listing's version {current.Version}", current.Version);
        }

        var stored = await store.GetAsync(Shard, listingId) ?? throw new InvalidOperationException($"listing {listingId} is indexed but missing from the store");
        var tombstone = stored with { Version = version, Withdrawn = true };
        await store.SaveAsync(Shard, tombstone);
        Remember(tombstone);
        _index.Remove(listingId);
        return new(ListingOutcome.Applied, "listing withdrawn", version);
    }

    public Task<StoredListing?> Find(string listingId) =>
        _entries.ContainsKey(listingId) ? store.GetAsync(Shard, listingId) : Task.FromResult<StoredListing?>(null);

    public Task<ShardHits> Search(SearchQuery query, int take)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // Lucene's searcher is thread-safe: searching off the grain's scheduler lets one shard serve queries in parallel.
        return Task.Run(() => _index.Search(query, take, now, ranking.SellerWeight));
    }

    public Task<int> Count() => Task.FromResult(_index.Count);

    public void Dispose() => _index.Dispose();

    private Task SweepExpired()
    {
        var expired = _index.RemoveExpired(time.GetUtcNow().ToUnixTimeMilliseconds());
        if (expired.Count > 0)
        {
            LogSwept(logger, Shard, expired.Count);
        }

        return Task.CompletedTask;
    }

    private void Remember(StoredListing listing, ulong? hash = null)
    {
        if (!_sellers.TryGetValue(listing.Seller, out var seller))
        {
            seller = listing.Seller;
            _sellers[seller] = seller;
        }

        _entries[listing.ListingId] = new Entry(seller, listing.Version, hash ?? Hash(listing.Envelope));
    }

    private static ulong Hash(byte[] envelope)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(envelope, digest);
        return BinaryPrimitives.ReadUInt64BigEndian(digest);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Search shard {Shard} rebuilt from storage: {Count} listings in {Milliseconds} ms")]
    private static partial void LogRebuilt(ILogger logger, int shard, int count, long milliseconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Search shard {Shard} removed {Count} expired listings")]
    private static partial void LogSwept(ILogger logger, int shard, int count);

    private readonly record struct Entry(string Seller, ulong Version, ulong Hash);
}
