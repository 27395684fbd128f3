using System.Collections.Concurrent;

namespace Hybrid.Supernode.Api;

/// <summary>
/// A token bucket per key (a peer, an address), refilled from the clock when tokens are taken
/// rather than by a timer. A partitioned limiter that replenishes on a timer visits every
/// partition ten times a second, which made idle held sessions the largest cost of a supernode
/// holding thousands of them; here an idle key costs nothing. Buckets that have filled up again
/// are indistinguishable from new ones and are dropped by a sweep that runs at most once per
/// <see cref="SweepInterval"/>, on some take.
/// </summary>
public sealed class KeyedTokenBuckets
{
    private const double Leeway = 1e-9;
    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly double _capacity;
    private readonly double _tokensPerTick;
    private long _nextSweep;

    /// <param name="capacity">Most tokens a key can save (its burst).</param>
    /// <param name="refill">Tokens added per <paramref name="period"/>, evenly.</param>
    /// <param name="period">The period of <paramref name="refill"/>.</param>
    /// <param name="time">The clock.</param>
    public KeyedTokenBuckets(int capacity, int refill, TimeSpan period, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(refill, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _capacity = capacity;
        _tokensPerTick = refill / (period.TotalSeconds * time.TimestampFrequency);
        _nextSweep = time.GetTimestamp() + (long)(SweepInterval.TotalSeconds * time.TimestampFrequency);
    }

    /// <summary>Keys with a bucket now (for tests and metrics).</summary>
    public int Count => _buckets.Count;

    /// <summary>Takes <paramref name="tokens"/> from <paramref name="key"/>'s bucket if it holds that many.</summary>
    public bool TryTake(string key, int tokens = 1)
    {
        ArgumentNullException.ThrowIfNull(key);
        var now = _time.GetTimestamp();
        SweepIfDue(now);
        while (true)
        {
            var bucket = _buckets.GetOrAdd(key, static (_, state) => new Bucket(state.Capacity, state.Now), (Capacity: _capacity, Now: now));
            lock (bucket)
            {
                if (bucket.Dropped)
                {
                    // Swept between the look-up and the lock: take from the bucket that replaced it.
                    continue;
                }

                bucket.Refill(now, _capacity, _tokensPerTick);
                // A billionth of a token of leeway: refills are sums of clock-tick fractions.
                if (bucket.Tokens < tokens - Leeway)
                {
                    return false;
                }

                bucket.Tokens = Math.Max(0, bucket.Tokens - tokens);
                return true;
            }
        }
    }

    private void SweepIfDue(long now)
    {
        var due = Volatile.Read(ref _nextSweep);
        if (now < due || Interlocked.CompareExchange(ref _nextSweep, now + (long)(SweepInterval.TotalSeconds * _time.TimestampFrequency), due) != due)
        {
            return;
        }

        foreach (var (key, bucket) in _buckets)
        {
            lock (bucket)
            {
                bucket.Refill(now, _capacity, _tokensPerTick);
                if (bucket.Tokens >= _capacity - Leeway)
                {
                    bucket.Dropped = true;
                    _buckets.TryRemove(new KeyValuePair<string, Bucket>(key, bucket));
                }
            }
        }
    }

    private sealed class Bucket(double tokens, long refilledAt)
    {
        public double Tokens { get; set; } = tokens;

        public bool Dropped { get; set; }

        private long _refilledAt = refilledAt;

        public void Refill(long now, double capacity, double tokensPerTick)
        {
            if (now > _refilledAt)
            {
                Tokens = Math.Min(capacity, Tokens + ((now - _refilledAt) * tokensPerTick));
                _refilledAt = now;
            }
        }
    }
}
