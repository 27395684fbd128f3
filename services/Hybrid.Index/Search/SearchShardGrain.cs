using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Security.Cryptography;
using Hybrid.Index.Listings;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Hybrid.Index.Search;

/// <summary>
/// One shard of the listing index (key = shard number). Owns the listings whose id hashes to it:
/// orders their versions, writes them to the durable store before acknowledging, and keeps a
/// Lucene index of them that it brings in line with the store when it activates anywhere in the
/// cluster. With <see cref="SearchOptions.IndexDirectory"/> the index is kept on disk (committed
/// every <c>SweepInterval</c> and at deactivation), and a restart indexes only the listings whose
/// stored version differs from the one indexed; without, or when the disk copy cannot be used,
/// every listing is indexed again. The signed envelopes stay in the store: a page of results is
/// read from it in one batch. Each activation claims its shard in the store before it reads it, and
/// the store takes writes from the latest claim only: an activation left running where the cluster
/// has declared its supernode dead cannot acknowledge a write the shard's new activation never read.
/// </summary>
[Alias("hybrid.ISearchShardGrain")]
public interface ISearchShardGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Stores and indexes a verified listing version; refuses older versions and other sellers. A
    /// tombstone (withdrawn, with the seller's verified withdrawal, as another cluster sends it) takes
    /// the listing down the same way a withdrawal does, and is stored even where the listing was never seen.
    /// </summary>
    /// <remarks>Writes to different listings overlap (their durable writes are committed together); writes to one listing take turns.</remarks>
    [AlwaysInterleave]
    Task<ListingWriteResult> Publish(StoredListing listing);

    /// <summary>Takes a listing down, with a withdrawal signed by its seller at a newer version (kept, as signed, in <paramref name="withdrawal"/>).</summary>
    [AlwaysInterleave]
    Task<ListingWriteResult> Withdraw(string listingId, string seller, ulong version, byte[]? withdrawal);

    /// <summary>The stored listing (active, withdrawn or expired), or null.</summary>
    [AlwaysInterleave]
    Task<StoredListing?> Find(string listingId);

    /// <summary>The best <paramref name="take"/> hits of this shard: ids and sort keys only.</summary>
    [AlwaysInterleave]
    Task<ShardHits> Search(SearchQuery query, int take);

    /// <summary>The stored, still-searchable listings among <paramref name="listingIds"/>.</summary>
    /// <remarks>Search now reads its pages from the store itself; kept for silos of the previous version during a rolling upgrade.</remarks>
    [AlwaysInterleave]
    Task<ImmutableArray<StoredListing>> Fetch(ImmutableArray<string> listingIds);

    /// <summary>The stored listings among <paramref name="listingIds"/> that are live or withdrawn (not expired): what other clusters may take.</summary>
    [AlwaysInterleave]
    Task<ImmutableArray<StoredListing>> FetchHeld(ImmutableArray<string> listingIds);

    /// <summary>Listings searchable in this shard (activates and rebuilds it if needed).</summary>
    [AlwaysInterleave]
    Task<int> Count();

    /// <summary>Every listing version this shard holds (live or not), for reconciling with other clusters.</summary>
    [AlwaysInterleave]
    Task<ImmutableArray<HeldVersion>> Versions();

    /// <summary>
    /// Which state of the shard's versions <see cref="Versions"/> would now describe: equal answers
    /// mean nothing was added, replaced or expired in between (a new activation answers anew).
    /// </summary>
    [AlwaysInterleave]
    Task<ShardGeneration> Generation();

    /// <summary>Corrections for the words of <paramref name="text"/> this shard's listings do not contain.</summary>
    [AlwaysInterleave]
    Task<ImmutableArray<WordSuggestion>> Suggest(string text);
}

/// <summary>How much a seller's reputation weighs in relevance ranking. 1 is neutral.</summary>
public interface IRankingSignal
{
    /// <summary>Factor on a listing's relevance for its seller (1: neutral).</summary>
    double SellerWeight(string seller);

    /// <summary>The seller's trust score, 0-100 (for the minimum-reputation filter).</summary>
    int TrustScore(string seller);
}

/// <summary>Neutral ranking until reputation exists: every seller weighs 1.</summary>
public sealed class NeutralRanking : IRankingSignal
{
    public double SellerWeight(string seller) => 1.0;

    public int TrustScore(string seller) => 0;
}

/// <inheritdoc cref="ISearchShardGrain"/>
[CollectionAgeLimit(AlwaysActive = true)]
public sealed partial class SearchShardGrain(IListingStore store, IRankingSignal ranking, ListingQuotas quotas, Synonyms synonyms, IOptions<SearchOptions> options, TimeProvider time, ILogger<SearchShardGrain> logger) : Grain, ISearchShardGrain, IDisposable
{
    // What live listings take, per seller and in all: the quotas are checked against these.
    private readonly Dictionary<string, (int Count, long Bytes)> _liveBySeller = new(StringComparer.Ordinal);
    private (int Count, long Bytes) _live;

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Guid _activation = Guid.NewGuid();
    private long _changes;
    private long _changesAtSweep = -1;
    private bool _compactedWhileQuiet;
    private readonly Dictionary<string, string> _sellers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> _writing = new(StringComparer.Ordinal);
    private ListingIndex _index = null!;
    private Task _rebuilt = Task.CompletedTask;
    private long _claim;
    private int Shard => (int)this.GetPrimaryKeyLong();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Rebuilding a large shard takes longer than an activation should: it runs on the thread pool
        // (shards rebuild in parallel), and every call waits for it before touching the index.
        var shard = Shard;
        _index = new ListingIndex(synonyms, options.Value.IndexDirectory is { } folder ? Path.Combine(folder, $"shard-{shard}") : null)
        {
            RefreshInterval = options.Value.RefreshInterval,
        };
        if (_index.OpenedFrom is IndexOrigin.Held or IndexOrigin.Unreadable)
        {
            LogIndexNotOpened(logger, shard, _index.OpenedFrom);
        }

        _rebuilt = Task.Run(() => RebuildAsync(shard), CancellationToken.None);
        var sweep = options.Value.SweepInterval;
        this.RegisterGrainTimer(SweepExpiredAsync, new GrainTimerCreationOptions(sweep, sweep) { Interleave = true });
        return Task.CompletedTask;
    }

    /// <summary>Waits for the rebuild; a failed one (storage down) deactivates the shard so the next call rebuilds afresh.</summary>
    private async Task RebuiltAsync()
    {
        try
        {
            await _rebuilt;
        }
        catch
        {
            this.DeactivateOnIdle();
            throw;
        }
    }

    private async Task RebuildAsync(int shard)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Claimed before it is read: whatever an earlier activation (perhaps one still running on a
        // supernode declared dead) stored before this is read below, and it can store nothing after.
        _claim = await store.ClaimAsync(shard);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // The store is the record. An index opened from disk is what it was at its last commit: each
        // listing whose version there is the stored one is kept as it is; the others are indexed again.
        var indexed = _index.OpenedFrom == IndexOrigin.Disk ? _index.IndexedVersions() : null;
        var changed = 0;
        await foreach (var listing in store.ReadShardAsync(shard, CancellationToken.None))
        {
            var live = !listing.Withdrawn && listing.ExpiresMs > now;
            // A Redis scan may return a listing twice: only a listing seen for the first time is added as new.
            var seen = _entries.ContainsKey(listing.ListingId);
            Remember(listing, live: live);
            var inIndex = seen;
            if (indexed is not null && indexed.Remove(listing.ListingId, out var version))
            {
                if (live && version == (long)listing.Version)
                {
                    continue;
                }

                inIndex = true;
            }

            if (live && !inIndex)
            {
                _index.Add(listing);
                changed++;
            }
            else if (live)
            {
                _index.Upsert(listing);
                changed++;
            }
            else if (inIndex)
            {
                _index.Remove(listing.ListingId);
                changed++;
            }
        }

        // Indexed once, and no longer in the store at all.
        foreach (var listingId in indexed?.Keys ?? Enumerable.Empty<string>())
        {
            _index.Remove(listingId);
            changed++;
        }

        _index.Refresh();
        _index.Commit();
        LogRebuilt(logger, shard, _entries.Count, changed, clock.ElapsedMilliseconds);
    }

    public async Task<ListingWriteResult> Publish(StoredListing listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        await RebuiltAsync();
        return await OneAtATimeAsync(listing.ListingId, () => PublishNowAsync(listing));
    }

    public async Task<ListingWriteResult> Withdraw(string listingId, string seller, ulong version, byte[]? withdrawal)
    {
        await RebuiltAsync();
        return await OneAtATimeAsync(listingId, () => WithdrawNowAsync(listingId, seller, version, withdrawal));
    }

    /// <summary>
    /// Runs writes to one listing in order while writes to others overlap. The grain runs one turn
    /// at a time, so the check and the registration below happen with nothing in between.
    /// </summary>
    private async Task<ListingWriteResult> OneAtATimeAsync(string listingId, Func<Task<ListingWriteResult>> write)
    {
        while (_writing.TryGetValue(listingId, out var earlier))
        {
            await earlier.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        }

        var task = write();
        _writing[listingId] = task;
        try
        {
            return await task;
        }
        catch (Orleans.Storage.InconsistentStateException)
        {
            // The shard was claimed by an activation elsewhere: this one is stale, and goes; the
            // caller's retry reaches the activation that now owns the shard.
            LogSuperseded(logger, Shard, _claim);
            this.DeactivateOnIdle();
            throw;
        }
        finally
        {
            if (_writing.TryGetValue(listingId, out var current) && current == task)
            {
                _writing.Remove(listingId);
            }
        }
    }

    private async Task<ListingWriteResult> PublishNowAsync(StoredListing listing)
    {
        if (listing.Withdrawn)
        {
            return await TombstoneNowAsync(listing);
        }

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

        if (OverQuota(listing, current) is { } refusal)
        {
            return new(ListingOutcome.OverQuota, refusal, current.Version);
        }

        if (!await store.SaveAsync(Shard, listing, _claim))
        {
            return await TakeStoredAsync(listing.ListingId, listing.Seller, listing.Version, held => !held.Withdrawn && Hash(held.Envelope) == hash);
        }

        Remember(listing, hash);
        _index.Upsert(listing);
        return new(ListingOutcome.Applied, "listing stored", listing.Version);
    }

    private async Task<ListingWriteResult> TombstoneNowAsync(StoredListing tombstone)
    {
        if (tombstone.ExpiresMs <= time.GetUtcNow().ToUnixTimeMilliseconds())
        {
            // Past the listing's expiry nothing can bring it back: no tombstone is needed.
            return new(ListingOutcome.Unchanged, "the withdrawn listing has expired", tombstone.Version);
        }

        if (_entries.TryGetValue(tombstone.ListingId, out var current))
        {
            if (current.Seller != tombstone.Seller)
            {
                return new(ListingOutcome.NotSeller, $"listing {tombstone.ListingId} belongs to another seller", current.Version);
            }

            if (tombstone.Version <= current.Version)
            {
                return new(current.Withdrawn && tombstone.Version == current.Version ? ListingOutcome.Unchanged : ListingOutcome.Replayed, $"withdrawal version {tombstone.Version} is not newer than the stored version {current.Version}", current.Version);
            }
        }

        if (!await store.SaveAsync(Shard, tombstone, _claim))
        {
            return await TakeStoredAsync(tombstone.ListingId, tombstone.Seller, tombstone.Version, held => held.Withdrawn);
        }

        Remember(tombstone);
        _index.Remove(tombstone.ListingId);
        return new(ListingOutcome.Applied, "listing withdrawn", tombstone.Version);
    }

    private async Task<ListingWriteResult> WithdrawNowAsync(string listingId, string seller, ulong version, byte[]? withdrawal)
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
        var tombstone = stored with { Version = version, Withdrawn = true, Withdrawal = withdrawal };
        if (!await store.SaveAsync(Shard, tombstone, _claim))
        {
            return await TakeStoredAsync(listingId, seller, version, held => held.Withdrawn);
        }

        Remember(tombstone);
        _index.Remove(listingId);
        return new(ListingOutcome.Applied, "listing withdrawn", version);
    }

    /// <summary>
    /// The store refused a write because it already holds the listing at that version or a newer
    /// one: an earlier write of this shard that landed although its answer was lost, or a write by
    /// another activation of the shard (one on a supernode frozen and declared dead). The store is
    /// the record, so the shard takes its copy as its own (entry and index) and answers from it:
    /// unchanged when the store holds what was asked (<paramref name="same"/>, at that version),
    /// otherwise not newer than what is stored. Nothing is acknowledged that the store does not hold.
    /// </summary>
    private async Task<ListingWriteResult> TakeStoredAsync(string listingId, string seller, ulong version, Func<StoredListing, bool> same)
    {
        var stored = await store.GetAsync(Shard, listingId) ?? throw new InvalidOperationException($"the store refused listing {listingId} at version {version} but holds none");
        if (stored.Seller != seller)
        {
            return new(ListingOutcome.NotSeller, $"listing {listingId} belongs to another seller", stored.Version);
        }

        var live = !stored.Withdrawn && stored.ExpiresMs > time.GetUtcNow().ToUnixTimeMilliseconds();
        Remember(stored, live: live);
        if (live)
        {
            _index.Upsert(stored);
        }
        else
        {
            _index.Remove(listingId);
        }

        LogTookStored(logger, Shard, listingId, version, stored.Version);
        return stored.Version == version && same(stored)
            ? new(ListingOutcome.Unchanged, "this version is already stored", stored.Version)
            : new(ListingOutcome.Replayed, $"version {version} is not newer than the stored version {stored.Version}", stored.Version);
    }

    public async Task<StoredListing?> Find(string listingId)
    {
        await RebuiltAsync();
        if (!_entries.TryGetValue(listingId, out var entry))
        {
            return null;
        }

        return await store.GetAsync(Shard, listingId);
    }

    public async Task<ShardHits> Search(SearchQuery query, int take)
    {
        await RebuiltAsync();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // Searched off the grain's turn, on the thread pool: a shard answers many queries at once on
        // every core (a Lucene index is safe to search beside its writes), and its writes keep their turns.
        var index = _index;
        var queued = System.Diagnostics.Stopwatch.GetTimestamp();
        var (hits, searched) = await Task.Run(() =>
        {
            var started = IndexMeters.RecordStage("shard.queued", queued);
            var hits = index.Search(query, take, now, ranking is NeutralRanking ? null : ranking.SellerWeight, query.MinReputation > 0 ? ranking.TrustScore : null);
            return (hits, IndexMeters.RecordStage("shard.search", started));
        });
        IndexMeters.RecordStage("shard.resumed", searched);
        return hits;
    }

    public async Task<ImmutableArray<StoredListing>> Fetch(ImmutableArray<string> listingIds)
    {
        await RebuiltAsync();
        return await ReadAsync(listingIds, entry => entry.Live, withWithdrawn: false);
    }

    public async Task<ImmutableArray<StoredListing>> FetchHeld(ImmutableArray<string> listingIds)
    {
        await RebuiltAsync();
        return await ReadAsync(listingIds, entry => entry.Live || entry.Withdrawn, withWithdrawn: true);
    }

    /// <summary>
    /// Reads from the store, in one batch, the listings among <paramref name="listingIds"/> whose entry
    /// is <paramref name="wanted"/>, as stored now and not expired; withdrawn ones only when asked for,
    /// and only with their signed withdrawal.
    /// </summary>
    private async Task<ImmutableArray<StoredListing>> ReadAsync(ImmutableArray<string> listingIds, Func<Entry, bool> wanted, bool withWithdrawn)
    {
        var ids = listingIds.Where(id => _entries.TryGetValue(id, out var entry) && wanted(entry)).ToList();
        if (ids.Count == 0)
        {
            return [];
        }

        // The store may already hold a newer version being written (it is stored before it is
        // remembered here); whatever it holds is signed by the seller, so it is served as stored.
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // Read off the grain's turn too (an embedded store reads synchronously): writes need not wait for it.
        var shard = Shard;
        var stored = await Task.Run(() => store.GetManyAsync(shard, ids));
        return [.. stored.Where(l => l.ExpiresMs > now && (!l.Withdrawn || (withWithdrawn && l.Withdrawal is not null)))];
    }

    public async Task<ImmutableArray<WordSuggestion>> Suggest(string text)
    {
        await RebuiltAsync();
        var index = _index;
        return await Task.Run(() => index.Suggest(text));
    }

    public async Task<ImmutableArray<HeldVersion>> Versions()
    {
        await RebuiltAsync();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return [.. _entries.Select(kv => new HeldVersion(kv.Key, kv.Value.Version, kv.Value.Live, kv.Value.Withdrawn && kv.Value.ExpiresMs > now))];
    }

    public async Task<ShardGeneration> Generation()
    {
        await RebuiltAsync();
        return new ShardGeneration(_activation, _changes);
    }

    public async Task<int> Count()
    {
        await RebuiltAsync();
        return _index.Count;
    }

    public void Dispose() => _index?.Dispose();

    private async Task SweepExpiredAsync()
    {
        if (!_rebuilt.IsCompletedSuccessfully)
        {
            return;
        }

        var expired = _index.RemoveExpired(time.GetUtcNow().ToUnixTimeMilliseconds());
        foreach (var id in expired)
        {
            // An expired listing no longer counts against its seller's quota.
            if (_entries.TryGetValue(id, out var entry))
            {
                Set(id, entry with { Live = false });
            }
        }

        if (expired.Count > 0)
        {
            LogSwept(logger, Shard, expired.Count);
        }

        // A shard quiet since the last sweep folds its small segments into one, off the grain's
        // turn (searches and writes go on meanwhile), at most once per quiet spell.
        var quiet = _changes == _changesAtSweep;
        _changesAtSweep = _changes;
        if (quiet && !_compactedWhileQuiet && options.Value.CompactWhenQuiet)
        {
            _compactedWhileQuiet = true;
            var index = _index;
            if (await Task.Run(index.CompactSmallSegments))
            {
                IndexMeters.SearchCompactions.Add(1);
                LogCompacted(logger, Shard);
            }
        }
        else if (!quiet)
        {
            _compactedWhileQuiet = false;
        }

        // What changed since the last commit is made durable off the grain's turn (writes go on
        // meanwhile); a crash loses none of it, as the store has it, only the time to index it again.
        if (_index.HasUncommittedChanges)
        {
            await Task.Run(_index.Commit);
        }

        // An activation that writes learns at its next write that its shard was claimed elsewhere; one
        // that only answers searches learns it here, and goes rather than answer from a stale index.
        if (await store.ClaimOfAsync(Shard) != _claim)
        {
            LogSuperseded(logger, Shard, _claim);
            this.DeactivateOnIdle();
        }
    }

    private void Remember(StoredListing listing, ulong? hash = null, bool live = true)
    {
        if (!_sellers.TryGetValue(listing.Seller, out var seller))
        {
            seller = listing.Seller;
            _sellers[seller] = seller;
        }

        Set(listing.ListingId, new Entry(seller, listing.Version, hash ?? Hash(listing.Envelope), listing.ExpiresMs, listing.Envelope.Length, live && !listing.Withdrawn, listing.Withdrawn && listing.Withdrawal is not null));
    }

    /// <summary>Replaces an entry, keeping the live counts.</summary>
    private void Set(string listingId, Entry entry)
    {
        if (_entries.TryGetValue(listingId, out var old) && old.Live)
        {
            Count(old.Seller, -1, -old.Bytes);
        }

        _entries[listingId] = entry;
        _changes++;
        if (entry.Live)
        {
            Count(entry.Seller, 1, entry.Bytes);
        }
    }

    private void Count(string seller, int listings, long bytes)
    {
        var (count, total) = _liveBySeller.GetValueOrDefault(seller);
        if (count + listings <= 0)
        {
            _liveBySeller.Remove(seller);
        }
        else
        {
            _liveBySeller[seller] = (count + listings, total + bytes);
        }

        _live = (_live.Count + listings, _live.Bytes + bytes);
    }

    /// <summary>Why storing <paramref name="listing"/> (replacing <paramref name="current"/>) would exceed a quota, or null.</summary>
    private string? OverQuota(StoredListing listing, Entry current)
    {
        var addCount = current.Live ? 0 : 1;
        var addBytes = listing.Envelope.Length - (current.Live ? current.Bytes : 0);
        var (count, bytes) = _liveBySeller.GetValueOrDefault(listing.Seller);
        if (count + addCount > quotas.LivePerSeller || (addBytes > 0 && bytes + addBytes > quotas.BytesPerSeller))
        {
            return $"this seller's live listings are at their quota here ({count} listings, {bytes} bytes in this shard; at most {quotas.LivePerSeller} and {quotas.BytesPerSeller}): withdraw some first";
        }

        if (_live.Count + addCount > quotas.Live || (addBytes > 0 && _live.Bytes + addBytes > quotas.Bytes))
        {
            return "the network's listing index is full: it takes no new listings until some expire or are withdrawn";
        }

        return null;
    }

    private static ulong Hash(byte[] envelope)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(envelope, digest);
        return BinaryPrimitives.ReadUInt64BigEndian(digest);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Search shard {Shard} ready: {Count} listings in storage, {Indexed} of them indexed again or taken out, in {Milliseconds} ms")]
    private static partial void LogRebuilt(ILogger logger, int shard, int count, int indexed, long milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Search shard {Shard} could not use its index on disk ({Origin}): every listing is indexed again")]
    private static partial void LogIndexNotOpened(ILogger logger, int shard, IndexOrigin origin);

    [LoggerMessage(Level = LogLevel.Information, Message = "Search shard {Shard} was behind its store on listing {ListingId}: version {Version} was refused, the store holds version {StoredVersion}, which the shard now takes")]
    private static partial void LogTookStored(ILogger logger, int shard, string listingId, ulong version, ulong storedVersion);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Search shard {Shard} was claimed by an activation elsewhere since this one claimed it (claim {Claim}): this activation refuses writes and deactivates")]
    private static partial void LogSuperseded(ILogger logger, int shard, long claim);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Search shard {Shard} went quiet and folded its small index segments into one")]
    private static partial void LogCompacted(ILogger logger, int shard);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Search shard {Shard} removed {Count} expired listings")]
    private static partial void LogSwept(ILogger logger, int shard, int count);

    // What orders a listing's versions and charges its quota; its envelope is in the store only.
    // Live: searchable (neither withdrawn nor expired), and counted against the quotas.
    // Withdrawn: a tombstone that keeps its seller's signed withdrawal (other clusters can check it).
    private readonly record struct Entry(string Seller, ulong Version, ulong Hash, long ExpiresMs, int Bytes, bool Live, bool Withdrawn);
}
