using System.Globalization;
using System.Runtime.CompilerServices;
using Hybrid.Index.Listings;
using Hybrid.Index.Storage;
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

    // KEYS: claim, listings hash, versions hash. ARGV: claim, listing id, version, encoded listing.
    // Answers 1 when stored, 0 when the store holds that version or a newer one.
    private const string SaveNewer = RedisClaims.CheckFirst + """
        local stored = redis.call('HGET', KEYS[3], ARGV[2])
        if stored and tonumber(stored) >= tonumber(ARGV[3]) then return 0 end
        redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
        redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
        return 1
        """;

    public Task<long> ClaimAsync(int shard) => RedisClaims.ClaimAsync(redis.GetDatabase(), serviceId, StoreClaim.Listings(shard), lapse: null);

    public Task<long> ClaimOfAsync(int shard) => RedisClaims.LatestAsync(redis.GetDatabase(), serviceId, StoreClaim.Listings(shard));

    public async Task<bool> SaveAsync(int shard, StoredListing listing, long claim)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var owner = StoreClaim.Listings(shard);
        var answer = await redis.GetDatabase().ScriptEvaluateAsync(
            SaveNewer,
            [RedisClaims.Key(serviceId, owner), Key(shard), VersionsKey(shard)],
            [RedisClaims.Value(claim), listing.ListingId, listing.Version.ToString(CultureInfo.InvariantCulture), StoredListingCodec.Encode(listing)]);
        return RedisClaims.Answer(answer, owner, claim) == 1;
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
