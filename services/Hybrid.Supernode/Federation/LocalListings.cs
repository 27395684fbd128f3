using Hybrid.Index.Federation;
using Hybrid.Index.Search;

namespace Hybrid.Supernode.Federation;

/// <summary>What this cluster holds, as reconciliation sees it: the live listings' versions, and every version held.</summary>
/// <param name="Offered">The (id, version) of live listings and of withdrawn ones that keep their signed withdrawal: what is offered to other clusters.</param>
/// <param name="Held">Every version held: what a puller compares against, so it never asks for what it holds at a newer version.</param>
public sealed record ListingVersions(VersionSet Offered, IReadOnlyDictionary<string, ulong> Held)
{
    /// <summary>The version held of a listing, or null.</summary>
    public ulong? VersionOf(string listingId) => Held.TryGetValue(listingId, out var version) ? version : null;
}

/// <summary>
/// Snapshots of the shards' listing versions, reused for a short while: one reconciliation asks about
/// many ranges in a few calls, and several peer clusters may ask at once.
/// </summary>
public sealed class LocalListings(ShardedSearch search, TimeProvider time) : IDisposable
{
    private static readonly TimeSpan Reuse = TimeSpan.FromSeconds(2);
    private readonly SemaphoreSlim _building = new(1, 1);
    private (ListingVersions Versions, DateTimeOffset At)? _snapshot;

    /// <summary>A snapshot at most a couple of seconds old (<paramref name="fresh"/>: taken now).</summary>
    public async Task<ListingVersions> SnapshotAsync(bool fresh = false)
    {
        await _building.WaitAsync();
        try
        {
            var now = time.GetUtcNow();
            if (!fresh && _snapshot is { } kept && now - kept.At < Reuse)
            {
                return kept.Versions;
            }

            var held = await search.VersionsAsync();
            var versions = new ListingVersions(
                new VersionSet(held.Where(h => h.Live || h.Withdrawn).Select(h => new VersionedId(h.ListingId, h.Version))),
                held.ToDictionary(h => h.ListingId, h => h.Version, StringComparer.Ordinal));
            _snapshot = (versions, now);
            return versions;
        }
        finally
        {
            _building.Release();
        }
    }

    public void Dispose() => _building.Dispose();
}
