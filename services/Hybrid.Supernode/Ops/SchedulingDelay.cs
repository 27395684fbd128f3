using System.Diagnostics;
using Prometheus;

namespace Hybrid.Supernode.Ops;

/// <summary>
/// How long work queued on this supernode waits for a thread: a probe is queued on the thread pool
/// every <see cref="SampleEvery"/> from a thread of its own, and the wait until it runs is the delay.
/// Everything the process does waits that long too, the cluster's liveness probes among them: on a
/// supernode taken up by a herd of reconnecting peers, a delay near the probe timeout is what gets
/// it declared dead while it runs. Exposed as <c>hybrid_scheduling_delay_seconds</c>. The same
/// thread reads each garbage collection's pause (<see cref="CollectorPauses"/>).
/// </summary>
public sealed class SchedulingDelay : IDisposable
{
    /// <summary>How often a probe is queued.</summary>
    public static readonly TimeSpan SampleEvery = TimeSpan.FromMilliseconds(50);

    private static readonly Histogram Delays = Metrics.CreateHistogram(
        "hybrid_scheduling_delay_seconds",
        "How long work queued on this supernode's thread pool waited for a thread (sampled every 50 ms). Near the cluster's probe timeout, liveness probes go unanswered.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 13) });

    private readonly Thread _sampler;
    private readonly ManualResetEventSlim _stopping = new();
    private readonly CollectorPauses _pauses = new();

    // Stopwatch timestamp at which the probe now queued was queued; 0 while none is.
    private long _queuedAt;
    private long _lastDelayTicks;

    public SchedulingDelay()
    {
        _sampler = new Thread(Sample) { IsBackground = true, Name = "Scheduling delay" };
        _sampler.Start();
    }

    /// <summary>
    /// The delay now: the last probe's wait, or, while a probe still waits, how long it has waited
    /// so far if that is longer (a stall is seen while it lasts, not after).
    /// </summary>
    public TimeSpan Current
    {
        get
        {
            var last = Volatile.Read(ref _lastDelayTicks);
            var queuedAt = Volatile.Read(ref _queuedAt);
            var waiting = queuedAt == 0 ? 0 : Stopwatch.GetElapsedTime(queuedAt).Ticks;
            return TimeSpan.FromTicks(Math.Max(last, waiting));
        }
    }

    private void Sample()
    {
        while (!_stopping.Wait(SampleEvery))
        {
            _pauses.Check();
            if (Volatile.Read(ref _queuedAt) != 0)
            {
                // The last probe has not run yet: the delay grows, and Current already shows it.
                continue;
            }

            Volatile.Write(ref _queuedAt, Stopwatch.GetTimestamp());
            ThreadPool.UnsafeQueueUserWorkItem(static delay => delay.Ran(), this, preferLocal: false);
        }
    }

    private void Ran()
    {
        var waited = Stopwatch.GetElapsedTime(Volatile.Read(ref _queuedAt));
        Volatile.Write(ref _lastDelayTicks, waited.Ticks);
        Volatile.Write(ref _queuedAt, 0);
        Delays.Observe(waited.TotalSeconds);
    }

    public void Dispose()
    {
        _stopping.Set();
        _sampler.Join();
        _stopping.Dispose();
    }
}
