using System.Diagnostics;
using HdrHistogram;

namespace Hybrid.Load;

/// <summary>Closed and open load models, bounded in time and in requests in flight.</summary>
internal static class Drivers
{
    /// <summary>
    /// Closed model: <paramref name="workers"/> loops each send the next request when the previous
    /// answers, for <paramref name="duration"/>. Returns completed requests per second.
    /// </summary>
    public static async Task<double> ClosedAsync(int workers, TimeSpan duration, LongHistogram latencies, Func<int, Task> call)
    {
        var completed = 0L;
        var clock = Stopwatch.StartNew();
        using var live = Live(() => Interlocked.Read(ref completed), latencies, clock);
        await Task.WhenAll(Enumerable.Range(0, workers).Select(worker => Task.Run(async () =>
        {
            var i = worker;
            while (clock.Elapsed < duration)
            {
                var started = Stopwatch.GetTimestamp();
                await call(i);
                Report.Record(latencies, Stopwatch.GetElapsedTime(started));
                Interlocked.Increment(ref completed);
                i += workers;
            }
        })));
        return completed / clock.Elapsed.TotalSeconds;
    }

    /// <summary>A live console table: one row per second with the rate and latency so far.</summary>
    private static Timer Live(Func<long> completed, LongHistogram latencies, Stopwatch clock)
    {
        Console.WriteLine($"{"elapsed s",10} {"requests",12} {"per second",12} {"p50 ms",10} {"p99 ms",10}");
        var last = 0L;
        return new Timer(
            _ =>
            {
                var now = completed();
                long p50, p99;
                lock (latencies)
                {
                    p50 = latencies.TotalCount == 0 ? 0 : latencies.GetValueAtPercentile(50);
                    p99 = latencies.TotalCount == 0 ? 0 : latencies.GetValueAtPercentile(99);
                }

                Console.WriteLine($"{clock.Elapsed.TotalSeconds,10:0} {now,12:N0} {now - last,12:N0} {p50 / 1000.0,10:0.00} {p99 / 1000.0,10:0.00}");
                last = now;
            },
            null,
            TimeSpan.FromSeconds(1),
            TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// Open model: requests start at a fixed rate whatever the answers do; latency counts from the
    /// moment a request was due (no coordinated omission). At most <paramref name="maxInFlight"/> wait.
    /// <paramref name="answered"/>, when given, hears each answer's due time and latency (from any thread).
    /// </summary>
    public static async Task<(double Rate, long Dropped)> OpenAsync(double rate, TimeSpan duration, LongHistogram latencies, Func<int, Task> call, int maxInFlight = 2000, Action<TimeSpan, TimeSpan>? answered = null)
    {
        var total = (int)(rate * duration.TotalSeconds);
        var pending = 0;
        var dropped = 0L;
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clock = Stopwatch.StartNew();
        var next = 0;

        async Task RunOne(int index, TimeSpan due)
        {
            try
            {
                await call(index);
                var latency = clock.Elapsed - due;
                Report.Record(latencies, latency);
                answered?.Invoke(due, latency);
            }
            finally
            {
                if (Interlocked.Decrement(ref pending) == 0 && Volatile.Read(ref next) >= total)
                {
                    allDone.TrySetResult();
                }
            }
        }

        // Each tick starts every request that has come due since the last one: the schedule never
        // waits for answers, and a slow answer is charged from the moment its request was due.
        // Several dispatchers share the schedule (request i goes to dispatcher i mod n), so starting
        // calls is never the bottleneck of one thread.
        var dispatchers = Math.Max(2, Environment.ProcessorCount * 2);
        var started = 0;
        await Task.WhenAll(Enumerable.Range(0, dispatchers).Select(d => Task.Run(async () =>
        {
            var mine = d;
            while (mine < total)
            {
                var due = Math.Min(total, (int)(clock.Elapsed.TotalSeconds * rate));
                for (; mine < due; mine += dispatchers)
                {
                    if (Volatile.Read(ref pending) >= maxInFlight)
                    {
                        Interlocked.Increment(ref dropped);
                        continue;
                    }

                    Interlocked.Increment(ref pending);
                    _ = RunOne(mine, TimeSpan.FromSeconds(mine / rate));
                }

                await Task.Delay(1);
            }

            Interlocked.Increment(ref started);
        })));

        Volatile.Write(ref next, total);
        if (Volatile.Read(ref pending) == 0)
        {
            allDone.TrySetResult();
        }

        await allDone.Task;
        return (total / duration.TotalSeconds, dropped);
    }
}

/// <summary>
/// The slowest answer to the requests due in each second of an open model's schedule: whether its
/// tail is spread over the run or comes from a stall or two, and when.
/// </summary>
internal sealed class SlowestBySecond(TimeSpan duration)
{
    // A request is due before the schedule ends (request i of rate × duration at i / rate), so one
    // slot per started second holds every one; a slot past the end would always read 0.
    private readonly long[] _ticks = new long[Math.Max(1, (int)Math.Ceiling(duration.TotalSeconds))];

    public void Answered(TimeSpan due, TimeSpan latency)
    {
        var second = Math.Clamp((int)due.TotalSeconds, 0, _ticks.Length - 1);
        long seen;
        while ((seen = Volatile.Read(ref _ticks[second])) < latency.Ticks && Interlocked.CompareExchange(ref _ticks[second], latency.Ticks, seen) != seen)
        {
        }
    }

    /// <summary>Milliseconds, one figure per second of the schedule.</summary>
    public override string ToString() =>
        string.Join(" ", _ticks.Select(t => TimeSpan.FromTicks(t).TotalMilliseconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture)));
}
