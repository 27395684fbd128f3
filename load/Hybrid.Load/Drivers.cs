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

    /// <summary>
    /// Open model: requests start at a fixed rate whatever the answers do; latency counts from the
    /// moment a request was due (no coordinated omission). At most <paramref name="maxInFlight"/> wait.
    /// </summary>
    public static async Task<(double Rate, long Dropped)> OpenAsync(double rate, TimeSpan duration, LongHistogram latencies, Func<int, Task> call, int maxInFlight = 2000)
    {
        var total = (int)(rate * duration.TotalSeconds);
        var interval = TimeSpan.FromSeconds(1 / rate);
        var inFlight = new List<Task>(total);
        var pending = 0;
        var dropped = 0L;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < total; i++)
        {
            var due = interval * i;
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait);
            }

            if (Volatile.Read(ref pending) >= maxInFlight)
            {
                dropped++;
                continue;
            }

            Interlocked.Increment(ref pending);
            var index = i;
            inFlight.Add(Task.Run(async () =>
            {
                try
                {
                    await call(index);
                    Report.Record(latencies, clock.Elapsed - due);
                }
                finally
                {
                    Interlocked.Decrement(ref pending);
                }
            }));
        }

        await Task.WhenAll(inFlight);
        return (total / duration.TotalSeconds, dropped);
    }
}
