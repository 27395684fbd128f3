using System.Runtime.CompilerServices;
using Hybrid.Index.Storage;
using StackExchange.Redis;

namespace Hybrid.Supernode.Storage;

/// <summary>Item sets of a cluster: one Redis hash per set, under the cluster's service id.</summary>
public sealed class RedisItemStore(IConnectionMultiplexer redis, string serviceId) : IItemStore
{
    private const int ScanPage = 1000;

    public Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value) =>
        redis.GetDatabase().HashSetAsync(Key(itemSet), field, value);

    public Task RemoveAsync(string itemSet, string field) =>
        redis.GetDatabase().HashDeleteAsync(Key(itemSet), field);

    public async Task<byte[]?> GetAsync(string itemSet, string field)
    {
        var value = await redis.GetDatabase().HashGetAsync(Key(itemSet), field);
        return value.IsNull ? null : (byte[])value!;
    }

    public async IAsyncEnumerable<KeyValuePair<string, byte[]>> ReadAllAsync(string itemSet, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // HSCAN in pages: a large set is never one reply.
        await foreach (var entry in redis.GetDatabase().HashScanAsync(Key(itemSet), pageSize: ScanPage).WithCancellation(cancellationToken))
        {
            yield return new(entry.Name!, (byte[])entry.Value!);
        }
    }

    private RedisKey Key(string itemSet) => $"{serviceId}/items/{itemSet}";
}
