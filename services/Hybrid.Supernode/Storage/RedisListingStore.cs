using System.Runtime.CompilerServices;
using Hybrid.Index.Listings;
using StackExchange.Redis;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// Listings in cluster mode: one Redis hash per shard (field = listing id), so a shard rebuilds
/// with one HSCAN wherever it activates. Durability is Redis' own (AOF in the chart and compose file).
/// </summary>
/// <remarks>
/// A write never takes a listing back to an older version: a shard activation that was declared dead
/// while it still ran (a frozen supernode) may still send a stale write, and the version beside each
/// listing (a second hash) lets Redis refuse it atomically.
/// </remarks>
public sealed class RedisListingStore(IConnectionMultiplexer redis, string serviceId) : IListingStore
{
    private const int ScanPage = 1000;

    // KEYS: listings hash, versions hash. ARGV: listing id, version, encoded listing.
    private const string SaveNewer = """
        local stored = redis.call('HGET', KEYS[2], ARGV[1])
        if stored and tonumber(stored) >= tonumber(ARGV[2]) then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        return 1
        """;

    public async Task<bool> SaveAsync(int shard, StoredListing listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var stored = await redis.GetDatabase().ScriptEvaluateAsync(
            SaveNewer,
            [Key(shard), VersionsKey(shard)],
            [listing.ListingId, listing.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), StoredListingCodec.Encode(listing)]);
        return (long)stored == 1;
    }

    public async Task<StoredListing?> GetAsync(int shard, string listingId)
    {
        var value = await redis.GetDatabase().HashGetAsync(Key(shard), listingId);
        return value.IsNull ? null : StoredListingCodec.Decode((byte[])value!);
    }

    public async Task<IReadOnlyList<StoredListing>> GetManyAsync(int shard, IReadOnlyList<string> listingIds)
    {
        ArgumentNullException.ThrowIfNull(listingIds);
        if (listingIds.Count == 0)
        {
            return [];
        }

        var values = await redis.GetDatabase().HashGetAsync(Key(shard), [.. listingIds.Select(id => (RedisValue)id)]);
        return [.. values.Where(v => !v.IsNull).Select(v => StoredListingCodec.Decode((byte[])v!))];
    }

    public async IAsyncEnumerable<StoredListing> ReadShardAsync(int shard, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entry in redis.GetDatabase().HashScanAsync(Key(shard), pageSize: ScanPage).WithCancellation(cancellationToken))
        {
            yield return StoredListingCodec.Decode((byte[])entry.Value!);
        }
    }

    private RedisKey Key(int shard) => $"hybrid:{serviceId}:listings:{shard}";

    private RedisKey VersionsKey(int shard) => $"hybrid:{serviceId}:listing-versions:{shard}";
}
