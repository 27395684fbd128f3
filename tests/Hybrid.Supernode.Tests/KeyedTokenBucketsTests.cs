using CsCheck;
using Hybrid.Supernode.Api;
using Microsoft.Extensions.Time.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>The per-peer and per-address budgets: exact token buckets, whatever the sweeps drop.</summary>
public sealed class KeyedTokenBucketsTests
{
    private const int Capacity = 5;
    private const int RefillPerSecond = 2;

    [Fact]
    public void EveryTakeIsAnsweredAsAnUnsweptBucketPerKeyWouldAnswerIt()
    {
        // Steps: wait some milliseconds (sometimes past a sweep), then one key asks for some tokens.
        var step = Gen.Select(Gen.OneOf(Gen.Int[0, 400], Gen.Int[25_000, 40_000]), Gen.Int[0, 3], Gen.Int[1, 3]);
        step.Array[1, 200].Sample(steps =>
        {
            var time = new FakeTimeProvider();
            var buckets = new KeyedTokenBuckets(Capacity, RefillPerSecond, TimeSpan.FromSeconds(1), time);
            var model = new Dictionary<string, (double Tokens, long Ms)>();
            long nowMs = 0;
            foreach (var (waitMs, key, tokens) in steps)
            {
                time.Advance(TimeSpan.FromMilliseconds(waitMs));
                nowMs += waitMs;
                var name = $"peer-{key}";
                var (held, at) = model.GetValueOrDefault(name, (Capacity, nowMs));
                held = Math.Min(Capacity, held + ((nowMs - at) * RefillPerSecond / 1000.0));
                var expected = held >= tokens - 1e-9;
                model[name] = (expected ? held - tokens : held, nowMs);
                Assert.Equal(expected, buckets.TryTake(name, tokens));
            }
        }, iter: 300);
    }

    [Fact]
    public void KeysThatRefilledAreDroppedAndOnesStillDrawnDownAreKept()
    {
        var time = new FakeTimeProvider();
        var buckets = new KeyedTokenBuckets(Capacity, RefillPerSecond, TimeSpan.FromSeconds(1), time);
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(buckets.TryTake($"idle-{i}"));
        }

        time.Advance(TimeSpan.FromSeconds(31));
        // A key that spends faster than it refills keeps its (empty) bucket through the sweep.
        Assert.True(buckets.TryTake("busy", Capacity));
        Assert.Equal(1, buckets.Count);
        Assert.False(buckets.TryTake("busy"));
    }

    [Fact]
    public async Task ConcurrentTakersNeverGetMoreThanTheBucketHolds()
    {
        var time = new FakeTimeProvider();
        var buckets = new KeyedTokenBuckets(100, 1, TimeSpan.FromHours(1), time);
        var granted = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 1000; i++)
            {
                if (buckets.TryTake("shared"))
                {
                    Interlocked.Increment(ref granted);
                }
            }
        })));
        Assert.Equal(100, granted);
    }
}
