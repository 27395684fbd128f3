using System.Globalization;
using System.Runtime.CompilerServices;
using Hybrid.Index.Listings;
using StackExchange.Redis;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// Listings in cluster mode: one Redis hash per shard (field = listing id), so a shard rebuilds
/// with one HSCAN wherever it activates. Durability is Redis' own (AOF in the chart and compose file).
/// </summary>
/// <remarks>
/// A write never takes a listing back to an older version: the version beside each listing (a second
/// hash) lets Redis refuse an older one atomically. Nor does a write land from a shard activation that
/// no longer owns its shard (one left running on a supernode frozen and declared dead): each
/// activation claims its shard (a counter) before it reads it, and the write script checks the claim.
/// </remarks>
public sealed class RedisListingStore(IConnectionMultiplexer redis, string serviceId) : IListingStore
{
    private const int ScanPage = 1000;

    // KEYS: listings hash, versions hash, claim. ARGV: listing id, version, encoded listing, the writer's claim.
    // Answers 1 when stored, 0 when the store holds that version or a newer one, and the latest claim
    // (as a string) when the writer's claim is no longer the latest.
    private const string SaveNewer = """
        local latest = redis.call('GET', KEYS[3]) or '0'
        if latest ~= ARGV[4] then return latest end
        local stored = redis.call('HGET', KEYS[2], ARGV[1])
        if stored and tonumber(stored) >= tonumber(ARGV[2]) then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        return 1
        """;

    public async Task<long> ClaimAsync(int shard) => await redis.GetDatabase().StringIncrementAsync(ClaimKey(shard));

    public async Task<long> ClaimOfAsync(int shard) => (long?)await redis.GetDatabase().StringGetAsync(ClaimKey(shard)) ?? 0;

    public async Task<bool> SaveAsync(int shard, StoredListing listing, long claim)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var answer = await redis.GetDatabase().ScriptEvaluateAsync(
            SaveNewer,
            [Key(shard), VersionsKey(shard), ClaimKey(shard)],
            [listing.ListingId, listing.Version.ToString(CultureInfo.InvariantCulture), StoredListingCodec.Encode(listing), claim.ToString(CultureInfo.InvariantCulture)]);
        if (answer.Resp2Type == ResultType.BulkString)
        {
            throw ShardClaims.Superseded(shard, claim, long.Parse((string)answer!, CultureInfo.InvariantCulture));
        }

        return (long)answer == 1;
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

    private RedisKey ClaimKey(int shard) => $"hybrid:{serviceId}:listing-claim:{shard}";
}
