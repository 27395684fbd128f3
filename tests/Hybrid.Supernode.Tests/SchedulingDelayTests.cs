using System.Diagnostics;
using Hybrid.Supernode.Ops;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// The scheduling delay an operator reads to see why a busy supernode missed its liveness probes:
/// it must show a stalled thread pool while the stall lasts, and fall back once work runs again.
/// </summary>
public sealed class SchedulingDelayTests
{
    [Fact]
    public async Task AThreadPoolWhoseWorkersAreAllTakenShowsItsDelayWhileItLastsAndRecovers()
    {
        using var delay = new SchedulingDelay();
        await Eventually.TrueAsync(() => Task.FromResult(delay.Current < TimeSpan.FromMilliseconds(100)), TimeSpan.FromSeconds(10), "a scheduling delay under 100 ms on an idle pool");

        using var release = new ManualResetEventSlim();
        ThreadPool.GetMinThreads(out var workers, out _);
        // Twice as many blocked items as the pool keeps threads: work queued behind them waits until
        // the pool injects threads, which it does slowly when starved.
        var blockers = Enumerable.Range(0, Math.Max(4, workers * 2))
            .Select(_ => Task.Factory.StartNew(() => release.Wait(TimeSpan.FromSeconds(30)), CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default))
            .ToArray();
        try
        {
            // Polled on this thread without awaiting: an await would itself need a pool thread.
            var polling = Stopwatch.StartNew();
            var seen = TimeSpan.Zero;
            while (seen <= TimeSpan.FromMilliseconds(200) && polling.Elapsed < TimeSpan.FromSeconds(10))
            {
                seen = delay.Current;
                Thread.Sleep(10);
            }

            Assert.True(seen > TimeSpan.FromMilliseconds(200), $"the scheduling delay stayed at {seen.TotalMilliseconds:0} ms for 10 s while every pool worker was blocked");
        }
        finally
        {
            release.Set();
            await Task.WhenAll(blockers);
        }

        await Eventually.TrueAsync(() => Task.FromResult(delay.Current < TimeSpan.FromMilliseconds(100)), TimeSpan.FromSeconds(10), "the scheduling delay back under 100 ms once the pool's workers were free");
    }
}
