using System.Runtime.CompilerServices;
using Hybrid.Index.Listings;
using StackExchange.Redis;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// Listings in cluster mode: one Redis hash per shard (field = listing id), so a shard rebuilds
/// with one HSCAN wherever it activates. Durability is Redis' own (AOF in the chart and compose file).
/// </summary>
public sealed class RedisListingStore(IConnectionMultiplexer redis, string serviceId) : IListingStore
{
    private const int ScanPage = 1000;

    public Task SaveAsync(int shard, StoredListing listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        return redis.GetDatabase().HashSetAsync(Key(shard), listing.ListingId, StoredListingCodec.Encode(listing));
    }

    public async Task<StoredListing?> GetAsync(int shard, string listingId)
    {
        var value = await redis.GetDatabase().HashGetAsync(Key(shard), listingId);
        return value.IsNull ? null : StoredListingCodec.Decode((byte[])value!);
    }

    public async IAsyncEnumerable<StoredListing> ReadShardAsync(int shard, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entry in redis.GetDatabase().HashScanAsync(Key(shard), pageSize: ScanPage).WithCancellation(cancellationToken))
        {
            yield return StoredListingCodec.Decode((byte[])entry.Value!);
        }
    }

    private RedisKey Key(int shard) => $"hybrid:{serviceId}:listings:{shard}";
}
