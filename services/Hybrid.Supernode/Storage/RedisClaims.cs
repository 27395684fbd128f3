using System.Globalization;
using Hybrid.Index.Storage;
using StackExchange.Redis;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// <see cref="StoreClaim"/>s in Redis: one counter per owner. A claimed write is a script that
/// checks the claim and writes in one step, so nothing lands between the check and the write.
/// </summary>
internal static class RedisClaims
{
    /// <summary>
    /// The start of every claimed write's script: KEYS[1] is the owner's claim, ARGV[1] the writer's.
    /// A superseded writer gets the latest claim back as a string (a write answers with a number).
    /// </summary>
    public const string CheckFirst = """
        local latest = redis.call('GET', KEYS[1]) or '0'
        if latest ~= ARGV[1] then return latest end

        """;

    // KEYS: claim. ARGV: how long the claim lasts without a new one, in ms (0: for good).
    private const string Increment = """
        local claim = redis.call('INCR', KEYS[1])
        if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        return claim
        """;

    public static RedisKey Key(string serviceId, string owner) => $"hybrid:{serviceId}:claim:{owner}";

    /// <summary>Claims <paramref name="owner"/> anew; with <paramref name="lapse"/>, the claim lapses that long after (and each later claim renews it).</summary>
    public static async Task<long> ClaimAsync(IDatabase database, string serviceId, string owner, TimeSpan? lapse) =>
        (long)await database.ScriptEvaluateAsync(Increment, [Key(serviceId, owner)], [(long)(lapse?.TotalMilliseconds ?? 0)]);

    public static async Task<long> LatestAsync(IDatabase database, string serviceId, string owner) =>
        (long?)await database.StringGetAsync(Key(serviceId, owner)) ?? 0;

    /// <summary>The answer of a claimed write's script: throws when the writer was superseded, else the script's own number.</summary>
    public static long Answer(RedisResult answer, string owner, long claim)
    {
        ArgumentNullException.ThrowIfNull(answer);
        if (answer.Resp2Type == ResultType.BulkString)
        {
            throw StoreClaim.Superseded(owner, claim, long.Parse((string)answer!, CultureInfo.InvariantCulture));
        }

        return (long)answer;
    }

    public static RedisValue Value(long claim) => claim.ToString(CultureInfo.InvariantCulture);
}
