using System.Diagnostics;
using System.Globalization;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;

namespace Hybrid.Load;

/// <summary>
/// The search index alone, as a shard keeps it: N realistic listings in one in-process Lucene
/// index, searched by a closed model without writes, then while new listings are added at a steady
/// trickle, each searchable by the next search. What the index's own write path costs searches,
/// without the supernode around it.
/// </summary>
internal static class IndexScenario
{
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(5);

    public static async Task<int> RunAsync(int listings, int workers, TimeSpan duration, int addsPerSecond, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("index", "in-process, no writes");
        var corpus = Corpus.Create(listings);
        var queries = corpus.Queries(10_000, misspelledShare: 0.2).Select(SearchScenario.ToQuery).ToArray();
        using var index = new ListingIndex();
        foreach (var item in corpus.Items)
        {
            index.Add(item.Stored);
        }

        index.Refresh();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var search = Yielding(index, queries, now);
        await Drivers.ClosedAsync(workers, Warmup, report.Series("warm-up (ignored)"), search);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes();
        var quietRate = await Drivers.ClosedAsync(workers, duration, report.Series("in-process, no writes"), search);
        var quietCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu) / Math.Max(1, quietRate * duration.TotalSeconds);
        allocated = GC.GetTotalAllocatedBytes() - allocated;
        var quietSegments = index.Segments();
        AloneReport(index, queries, now, report);

        // Twice as long unmeasured first: the merges reach the state a steady trickle keeps.
        var (writtenRate, writtenCpu) = await WhileAddedAsync(index, queries, now, workers, addsPerSecond, Warmup + duration, duration, report, "in-process");

        report.Fact("searches, no writes", $"{quietRate:N0} /s ({quietCpu.TotalMilliseconds:0.00} ms of CPU and {allocated / Math.Max(1, quietRate * duration.TotalSeconds) / 1024:0.0} KiB allocated each, {quietSegments} segments)");
        report.Fact($"searches while {addsPerSecond} listings/s are added", $"{writtenRate:N0} /s ({writtenRate / quietRate:0.00} of it; {writtenCpu.TotalMilliseconds:0.00} ms of CPU each, writes included; {index.Segments()} segments after)");
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["listings"] = listings.ToString(CultureInfo.InvariantCulture),
            ["workers"] = workers.ToString(CultureInfo.InvariantCulture),
            ["seconds"] = duration.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["adds per second"] = addsPerSecond.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }

    /// <summary>
    /// Each of the first 2,000 queries searched once, one at a time: how much the queries themselves
    /// differ in cost, apart from any queueing, and which are the dearest. A tail that the
    /// queries alone have is a tail no layer above the index can remove.
    /// </summary>
    private static void AloneReport(ListingIndex index, SearchQuery[] queries, long now, Report report)
    {
        var alone = queries.Take(2_000).Select(query =>
        {
            var started = Stopwatch.GetTimestamp();
            var hits = index.Search(query, 20, now).TotalHits;
            return (Query: query, Hits: hits, Elapsed: Stopwatch.GetElapsedTime(started));
        }).OrderBy(q => q.Elapsed).ToList();
        double Ms(double share) => alone[Math.Min(alone.Count - 1, (int)(share * alone.Count))].Elapsed.TotalMilliseconds;
        var slowest = alone.Skip(alone.Count - (alone.Count / 100)).ToList();
        var total = alone.Sum(q => q.Elapsed.Ticks);
        report.Fact("each query alone, one at a time: p50 / p90 / p99 / max", $"{Ms(0.5):0.0} / {Ms(0.9):0.0} / {Ms(0.99):0.0} / {alone[^1].Elapsed.TotalMilliseconds:0.0} ms (the slowest 1 % take {slowest.Sum(q => q.Elapsed.Ticks) / (double)total:P0} of the time)");
        report.Fact("the dearest queries alone", string.Join("; ", alone.TakeLast(5).Reverse().Select(q => $"\"{q.Query.Text}\" {q.Elapsed.TotalMilliseconds:0} ms, {q.Hits:N0} hits")));
        var zero = alone.Where(q => q.Hits == 0).ToList();
        report.Fact("queries matching nothing, alone: share / median", zero.Count == 0 ? "none" : $"{zero.Count / (double)alone.Count:P1} / {zero[zero.Count / 2].Elapsed.TotalMilliseconds:0.0} ms");
    }

    /// <summary>
    /// Searches for <paramref name="queries"/> on <paramref name="index"/>, each yielding first: a search
    /// that never yields keeps the adds' timer from its thread, and the adds then arrive in bursts that
    /// one refresh makes visible (not a trickle).
    /// </summary>
    internal static Func<int, Task> Yielding(ListingIndex index, SearchQuery[] queries, long now) => async i =>
    {
        await Task.Yield();
        index.Search(queries[i % queries.Length], 20, now);
    };

    /// <summary>
    /// <paramref name="queries"/> searched on <paramref name="index"/> by the closed model while new
    /// listings are added at <paramref name="addsPerSecond"/>, each searchable by the next search, after
    /// <paramref name="warmup"/> unmeasured under the same writes: searches a second, and CPU per search
    /// (the adds included). The measured series is named after <paramref name="name"/>.
    /// </summary>
    internal static async Task<(double Rate, TimeSpan CpuPerSearch)> WhileAddedAsync(ListingIndex index, SearchQuery[] queries, long now, int workers, int addsPerSecond, TimeSpan warmup, TimeSpan duration, Report report, string name)
    {
        var fresh = Corpus.Create((int)(addsPerSecond * (warmup + duration).TotalSeconds) + 1, sellers: 50, seed: 7);
        var added = 0;
        Task Add(int i)
        {
            index.Upsert(fresh.Items[(Interlocked.Increment(ref added) - 1) % fresh.Items.Count].Stored);
            return Task.CompletedTask;
        }

        var search = Yielding(index, queries, now);
        var adding = Drivers.OpenAsync(addsPerSecond, warmup, report.Series($"in-process add, {addsPerSecond}/s (warm-up, ignored)"), Add);
        await Drivers.ClosedAsync(workers, warmup, report.Series("in-process warm-up while added (ignored)"), search);
        await adding;
        adding = Drivers.OpenAsync(addsPerSecond, duration, report.Series($"in-process add, {addsPerSecond}/s"), Add);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var rate = await Drivers.ClosedAsync(workers, duration, report.Series($"{name}, while {addsPerSecond} listings/s are added"), search);
        var cpuPerSearch = (Process.GetCurrentProcess().TotalProcessorTime - cpu) / Math.Max(1, rate * duration.TotalSeconds);
        await adding;
        return (rate, cpuPerSearch);
    }
}
