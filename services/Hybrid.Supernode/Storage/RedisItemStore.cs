using System.Runtime.CompilerServices;
using Hybrid.Index.Storage;
using StackExchange.Redis;

namespace Hybrid.Supernode.Storage;

/// <summary>Item sets of a cluster: one Redis hash per set, under the cluster's service id.</summary>
public sealed class RedisItemStore(IConnectionMultiplexer redis, string serviceId) : IItemStore
{
    private const int ScanPage = 1000;

    // A claim lapses a month after it was last made or written with: owners claimed and gone (peers
    // who left) leave no key behind for good, and a claim in use never lapses.
    private static readonly TimeSpan ClaimLapse = TimeSpan.FromDays(30);

    // KEYS: claim, item set. ARGV: claim, field, value, lapse in ms.
    private const string PutClaimed = RedisClaims.CheckFirst + """
        redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        return 1
        """;

    // KEYS: claim, item set. ARGV: claim, field, lapse in ms.
    private const string RemoveClaimed = RedisClaims.CheckFirst + """
        redis.call('HDEL', KEYS[2], ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return 1
        """;

    public async Task<StoreClaim> ClaimAsync(string owner) => new(owner, await RedisClaims.ClaimAsync(redis.GetDatabase(), serviceId, owner, ClaimLapse));

    public async Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value, StoreClaim? claim = null)
    {
        if (claim is not { } held)
        {
            await redis.GetDatabase().HashSetAsync(Key(itemSet), field, value);
            return;
        }

        await WriteClaimedAsync(PutClaimed, itemSet, held, field, value);
    }

    public async Task RemoveAsync(string itemSet, string field, StoreClaim? claim = null)
    {
        if (claim is not { } held)
        {
            await redis.GetDatabase().HashDeleteAsync(Key(itemSet), field);
            return;
        }

        await WriteClaimedAsync(RemoveClaimed, itemSet, held, field);
    }

    /// <summary>Runs a claimed write's script: KEYS claim and item set; ARGV the claim, <paramref name="values"/>, then the lapse in ms.</summary>
    private async Task WriteClaimedAsync(string script, string itemSet, StoreClaim held, params RedisValue[] values)
    {
        var answer = await redis.GetDatabase().ScriptEvaluateAsync(
            script,
            [RedisClaims.Key(serviceId, held.Owner), Key(itemSet)],
            [RedisClaims.Value(held.Number), .. values, (long)ClaimLapse.TotalMilliseconds]);
        RedisClaims.Answer(answer, held.Owner, held.Number);
    }

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
