using Hybrid.Index.Federation;
using Hybrid.Index.Reputation;
using Hybrid.Index.Search;
using Hybrid.Index.Storage;

namespace Hybrid.Supernode.Federation;

/// <summary>What this cluster holds of one set, as reconciliation sees it: what it offers, and every version held.</summary>
/// <param name="Offered">The (id, version) of what is offered to other clusters.</param>
/// <param name="Held">Every version held: what a puller compares against, so it never asks for what it holds at a newer version.</param>
public sealed record HeldVersions(VersionSet Offered, IReadOnlyDictionary<string, ulong> Held)
{
    /// <summary>The version held of an item, or null.</summary>
    public ulong? VersionOf(string id) => Held.TryGetValue(id, out var version) ? version : null;
}

/// <summary>
/// Snapshots of one set's versions. One reconciliation asks about many ranges in a few calls, and
/// several peer clusters may ask at once, so a snapshot is reused for a couple of seconds; beyond
/// that, it is read again only when the set's change stamp moved (or a minute passed, as tombstones
/// stop being offered with time): at a million items a snapshot costs seconds of CPU, and a
/// cluster at peace reconciles every interval.
/// </summary>
public abstract class LocalSet(TimeProvider time) : IDisposable
{
    /// <summary>The clock snapshots are dated by.</summary>
    protected TimeProvider Time { get; } = time;

    private static readonly TimeSpan Reuse = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(1);
    private readonly SemaphoreSlim _building = new(1, 1);
    private (HeldVersions Versions, DateTimeOffset At, DateTimeOffset TakenAt, string Stamp)? _snapshot;

    /// <summary>A snapshot at most a couple of seconds old (<paramref name="fresh"/>: as the set is now).</summary>
    public async Task<HeldVersions> SnapshotAsync(bool fresh = false)
    {
        await _building.WaitAsync();
        try
        {
            var now = Time.GetUtcNow();
            if (!fresh && _snapshot is { } recent && now - recent.At < Reuse)
            {
                return recent.Versions;
            }

            // The stamp is read before the set: a change in between moves it again for the next call.
            var stamp = await StampAsync();
            if (_snapshot is { } kept && now - kept.TakenAt < MaxAge && kept.Stamp == stamp)
            {
                _snapshot = kept with { At = now };
                return kept.Versions;
            }

            var versions = await TakeAsync();
            _snapshot = (versions, now, now, stamp);
            return versions;
        }
        finally
        {
            _building.Release();
        }
    }

    /// <summary>What changes whenever the set changes (equal stamps: the set is as it was).</summary>
    protected abstract Task<string> StampAsync();

    /// <summary>Reads the set's versions now.</summary>
    protected abstract Task<HeldVersions> TakeAsync();

    public void Dispose()
    {
        _building.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The shards' listings: live ones and withdrawn ones that keep their signed withdrawal are offered.</summary>
public sealed class LocalListings(ShardedSearch search, TimeProvider time) : LocalSet(time)
{
    protected override async Task<string> StampAsync() => string.Join(',', await search.GenerationsAsync());

    protected override async Task<HeldVersions> TakeAsync()
    {
        var held = await search.VersionsAsync();
        return new HeldVersions(
            new VersionSet(held.Where(h => h.Live || h.Withdrawn).Select(h => new VersionedId(h.ListingId, h.Version))),
            held.ToDictionary(h => h.ListingId, h => h.Version, StringComparer.Ordinal));
    }
}

/// <summary>The reviews and replies held (the <see cref="ReviewCatalog"/>): all are offered.</summary>
public sealed class LocalReviews(IItemStore items, IGrainFactory grains, TimeProvider time) : LocalSet(time)
{
    protected override async Task<string> StampAsync() => (await grains.GetGrain<IReviewCatalogGrain>(0).Generation()).ToString();

    protected override async Task<HeldVersions> TakeAsync()
    {
        var held = await ReviewCatalog.ReadAsync(items, CancellationToken.None);
        var offered = new VersionSet(held);
        var versions = new Dictionary<string, ulong>(held.Count, StringComparer.Ordinal);
        foreach (var item in held)
        {
            versions[item.Id] = item.Version;
        }

        return new HeldVersions(offered, versions);
    }
}
