using System.Diagnostics;
using System.Globalization;
using Grpc.Net.Client;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Storage;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Search at scale on one embedded supernode: N realistic listings are written into its SQLite
/// store, the supernode starts and rebuilds its shards (time to ready, memory per listing), then
/// the same two-word, price-filtered queries run (a) in-process on one Lucene index of the same
/// listings — the baseline — and (b) through the supernode's gRPC API, closed model and open model.
/// </summary>
internal static class SearchScenario
{
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(3);

    /// <summary>
    /// A supernode just restarted runs its search path from first-tier machine code: its rate rose
    /// for about 20 s (from under 400 to 1,250 a second at 200,000 listings) while the in-process
    /// index, searched for 18 s already, was measured warm. The supernode gets as long.
    /// </summary>
    private static readonly TimeSpan SupernodeWarmup = TimeSpan.FromSeconds(18);

    /// <summary>
    /// Against a running network: the generator's queries (its vocabulary, price filters mixed in)
    /// on <paramref name="target"/>, beside a no-op call on the same supernode as the baseline.
    /// </summary>
    public static async Task<int> RunAgainstAsync(string target, int workers, TimeSpan duration, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("search-target", "no-op gRPC call, closed model");
        var queries = Corpus.Create(2_000).Queries(10_000);
        using var channel = GrpcChannel.ForAddress(target, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var client = new Protocol.Api.SupernodeClients(channel);
        var noop = new ListCategoriesRequest();
        async Task NoOp(int i) => await client.Listings.ListCategoriesAsync(noop, cancellationToken: cancellationToken);
        async Task Remote(int i) => await client.Listings.SearchAsync(queries[i % queries.Count], cancellationToken: cancellationToken);
        await Drivers.ClosedAsync(workers, Warmup, report.Series("warm-up (ignored)"), NoOp);
        var noopRate = await Drivers.ClosedAsync(workers, duration, report.Series("no-op gRPC call, closed model"), NoOp);
        await Drivers.ClosedAsync(workers, Warmup, report.Series("warm-up (ignored) "), Remote);
        var remoteRate = await Drivers.ClosedAsync(workers, duration, report.Series($"search, closed model, {workers} workers"), Remote);
        var openRate = Math.Max(1, Math.Round(remoteRate / 2));
        var (_, dropped) = await Drivers.OpenAsync(openRate, duration, report.Series($"search, open model at {openRate:0}/s"), Remote, maxInFlight: 100);
        report.Fact("no-op calls (baseline)", $"{noopRate:N0} /s");
        report.Fact("searches", $"{remoteRate:N0} /s ({remoteRate / noopRate:0.00} of the no-op rate)");
        report.Fact("open model not sent (over 100 in flight)", dropped.ToString(CultureInfo.InvariantCulture));
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["target"] = target,
            ["workers"] = workers.ToString(CultureInfo.InvariantCulture),
            ["seconds"] = duration.TotalSeconds.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }

    /// <summary>New listings a second published beside the searches of the "while published" phase.</summary>
    private const int PublishesWhileSearching = 20;

    public static async Task<int> RunAsync(int listings, int shards, int workers, TimeSpan duration, bool onDisk, string[] extraSettings, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("search", "in-process, one Lucene index");
        var clock = Stopwatch.StartNew();
        var corpus = Corpus.Create(listings);
        report.Fact("listings signed", $"{listings:N0} in {clock.Elapsed.TotalSeconds:0.0} s");
        // One query in five with a typo in its second word (forgiving search pays for those).
        var queries = corpus.Queries(10_000, misspelledShare: 0.2);

        using var temp = new TempDir();
        var dataDir = temp.Sub("data");
        Directory.CreateDirectory(dataDir);
        clock.Restart();
        await using (var database = new SqliteDatabase(Path.Combine(dataDir, "index.db")))
        {
            await corpus.SeedAsync(new SqliteListingStore(database), shards);
        }

        report.Fact("listings written to SQLite", $"{clock.Elapsed.TotalSeconds:0.0} s");

        long emptyRss, emptyHeap;
        await using (var empty = await SupernodeProcess.StartAsync(temp.Sub("empty"), $"--Supernode:SearchShards={shards}", $"--Supernode:SearchIndexOnDisk={onDisk}"))
        {
            await empty.Client.Listings.SearchAsync(new SearchRequest { Text = "warm" }, cancellationToken: cancellationToken);
            await empty.CollectGarbageAsync();
            emptyHeap = (await empty.ManagedHeapAsync()).Live;
            emptyRss = empty.ResidentBytes();
        }

        string[] settings = [$"--Supernode:SearchShards={shards}", $"--Supernode:SearchIndexOnDisk={onDisk}", "--Supernode:RequestsPerSecond=1000000", "--Supernode:RequestBurst=1000000", .. extraSettings.Select(s => $"--Supernode:{s}")];
        clock.Restart();
        var first = await SupernodeProcess.StartAsync(dataDir, settings);
        var firstReady = clock.Elapsed;
        report.Fact("supernode first start to ready, indexing every listing", $"{firstReady.TotalSeconds:0.0} s ({listings / firstReady.TotalSeconds:N0} listings/s)");
        // A crash, then a start again: the shards open their index from disk and check it against the store.
        first.KillHard();
        await first.DisposeAsync();
        clock.Restart();
        await using var node = await SupernodeProcess.StartAsync(dataDir, settings);
        var ready = clock.Elapsed;
        await node.CollectGarbageAsync();
        var fullHeap = (await node.ManagedHeapAsync()).Live;
        var fullRss = node.ResidentBytes();
        report.Fact(onDisk ? "supernode restart to ready after kill -9 (index on disk, checked against the store)" : "supernode restart to ready after kill -9 (indexing every listing again)", $"{ready.TotalSeconds:0.0} s ({listings / ready.TotalSeconds:N0} listings/s)");
        report.Fact("supernode resident memory, empty / full", $"{emptyRss >> 20} MiB / {fullRss >> 20} MiB");
        report.Fact("memory per indexed listing (RSS growth / listings)", $"{(fullRss - emptyRss) / (double)listings:0} bytes");
        report.Fact("memory per indexed listing (live managed heap growth after a full GC / listings)", $"{(fullHeap - emptyHeap) / (double)listings:0} bytes");

        var (exactRate, localRate, localCpu, localWrittenRate, localWrittenCpu) = await InProcessAsync(corpus, queries, onDisk ? temp.Sub("in-process-index") : null, workers, duration, report);
        // The runner lets go of the listings and the in-process index before the supernode's phases: a
        // collection of a heap that size paused the open model's sender for over a second.
        corpus = null!;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);

        using var channel = GrpcChannel.ForAddress(node.GrpcUrl, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var client = new Protocol.Api.SupernodeClients(channel);
        async Task Remote(int i) => await client.Listings.SearchAsync(queries[i % queries.Count], cancellationToken: cancellationToken);

        // The ceiling the transport alone allows on this machine: a call that does no work.
        var noop = new ListCategoriesRequest();
        async Task NoOp(int i) => await client.Listings.ListCategoriesAsync(noop, cancellationToken: cancellationToken);
        await Drivers.ClosedAsync(workers, Warmup, report.Series("warm-up (ignored)  "), NoOp);
        var noopRate = await Drivers.ClosedAsync(workers, duration, report.Series($"no-op gRPC call, closed model, {workers} workers"), NoOp);

        // How the shards' segments stood, and whether a quiet spell folded them, around each phase.
        var segments = new List<string>();
        async Task Segments(string phase) => segments.Add($"{phase}: {await node.MetricAsync("hybrid_search_index_segments"):0} segments, {await node.MetricAsync("hybrid_search_index_compactions"):0} compactions");
        await Segments("after the restart");
        await Drivers.ClosedAsync(workers, SupernodeWarmup, report.Series("warm-up (ignored) "), Remote);
        await Segments("before the closed model");
        var closedStages = await SearchStages.ReadAsync(node);
        var (nodeCpu, runnerCpu) = (node.CpuTime(), Process.GetCurrentProcess().TotalProcessorTime);
        var remoteRate = await Drivers.ClosedAsync(workers, duration, report.Series($"supernode gRPC, closed model, {workers} workers"), Remote);
        var remoteSearches = remoteRate * duration.TotalSeconds;
        (nodeCpu, runnerCpu) = ((node.CpuTime() - nodeCpu) / remoteSearches, (Process.GetCurrentProcess().TotalProcessorTime - runnerCpu) / remoteSearches);
        closedStages = await SearchStages.ReadAsync(node) - closedStages;
        await Segments("before the open model");
        var openRate = Math.Max(1, Math.Round(remoteRate / 2));
        var openGc = await node.GcTotalsAsync();
        var openPauses = await node.HistogramAsync("hybrid_gc_pause_seconds", "kind=\"ephemeral\"");
        var openInside = await node.HistogramAsync("hybrid_search_duration_seconds");
        var openStages = await SearchStages.ReadAsync(node);
        var slowest = new SlowestBySecond(duration);
        var (_, dropped) = await Drivers.OpenAsync(openRate, duration, report.Series($"supernode gRPC, open model at {openRate:0}/s"), Remote, answered: slowest.Answered);
        openGc = await node.GcTotalsAsync() - openGc;
        openPauses = await node.HistogramAsync("hybrid_gc_pause_seconds", "kind=\"ephemeral\"") - openPauses;
        openInside = await node.HistogramAsync("hybrid_search_duration_seconds") - openInside;
        openStages = await SearchStages.ReadAsync(node) - openStages;
        await Segments("after the open model");

        // A live marketplace is written to while it is searched: the same closed model while sellers
        // publish new listings at a steady trickle (each write is durable, and is indexed at once).
        // First as long again unmeasured: the supernode's write, flush and merge paths warm up as on a
        // supernode that has been written to for a while (this one has only rebuilt since its start).
        var fresh = Corpus.Create((int)(PublishesWhileSearching * (SupernodeWarmup + duration).TotalSeconds) + 1, sellers: 50, seed: 7);
        var published = 0;
        async Task Publish(int i) => await client.Listings.PublishListingAsync(fresh.Items[(Interlocked.Increment(ref published) - 1) % fresh.Items.Count].Envelope, cancellationToken: cancellationToken);
        var publishing = Drivers.OpenAsync(PublishesWhileSearching, SupernodeWarmup, report.Series($"publish, {PublishesWhileSearching}/s while searched (warm-up, ignored)"), Publish);
        await Drivers.ClosedAsync(workers, SupernodeWarmup, report.Series("warm-up while published (ignored)"), Remote);
        await publishing;
        await Segments("before the written phase");
        publishing = Drivers.OpenAsync(PublishesWhileSearching, duration, report.Series($"publish, {PublishesWhileSearching}/s while searched"), Publish);
        var nodeWrittenCpu = node.CpuTime();
        var writtenRate = await Drivers.ClosedAsync(workers, duration, report.Series($"supernode gRPC, closed model, {workers} workers, while {PublishesWhileSearching} listings/s are published"), Remote);
        nodeWrittenCpu = node.CpuTime() - nodeWrittenCpu;
        await publishing;
        await Segments("after the written phase");

        report.Fact("in-process throughput (baseline)", $"{localRate:N0} searches/s");
        report.Fact("no-op gRPC call throughput (transport ceiling)", $"{noopRate:N0} calls/s");
        report.Fact("supernode throughput", $"{remoteRate:N0} searches/s");
        report.Fact("supernode / in-process throughput", $"{remoteRate / localRate:0.00}");
        report.Fact($"supernode throughput while {PublishesWhileSearching} listings/s are published", $"{writtenRate:N0} searches/s ({writtenRate / remoteRate:0.00} of it without writes)");
        report.Fact($"in-process throughput while {PublishesWhileSearching} listings/s are added (baseline)", $"{localWrittenRate:N0} searches/s ({localWrittenRate / localRate:0.00} of it without writes)");
        report.Fact($"CPU per search while {PublishesWhileSearching} listings/s are written: in-process / supernode (its writes included)", $"{localWrittenCpu.TotalMilliseconds:0.00} ms / {nodeWrittenCpu.TotalMilliseconds / Math.Max(1, writtenRate * duration.TotalSeconds):0.00} ms");
        report.Fact($"supernode's share of one core while {PublishesWhileSearching} listings/s are published", $"{nodeWrittenCpu / duration:P0}");
        report.Fact("search shards' segments", string.Join("; ", segments));
        // The same comparison without the load generator's share of the two cores: CPU per search.
        report.Fact("CPU per search: in-process / supernode (runner's gRPC client besides)", $"{localCpu.TotalMilliseconds:0.00} ms / {nodeCpu.TotalMilliseconds:0.00} ms ({runnerCpu.TotalMilliseconds:0.00} ms)");
        report.Fact("supernode efficiency: in-process CPU per search / supernode CPU per search", $"{localCpu / nodeCpu:0.00}");
        report.Fact("open model requests dropped (over 2000 in flight)", dropped.ToString(CultureInfo.InvariantCulture));
        report.Fact("open model, slowest answer among the requests due in each second (ms)", slowest.ToString());
        report.Fact("open model, the supernode's own time per search (from the search's start to its page, its metrics' buckets): p50 / p90 / p99 at most", $"{openInside.AtMost(0.5) * 1000:0.#} / {openInside.AtMost(0.9) * 1000:0.#} / {openInside.AtMost(0.99) * 1000:0.#} ms");
        report.Fact("closed model, the supernode's search stages (per search: times, mean; p99 at most)", closedStages.Describe(remoteSearches));
        report.Fact("open model, the supernode's search stages (per search: times, mean; p99 at most)", openStages.Describe(openInside.Count));
        report.Fact("supernode's garbage collections in the open model", $"{openGc.Collections} ({openGc.Gen1} of generation 1, {openGc.Gen2} of 2), pausing it {openGc.Paused / duration:P1} of the time; {openGc.AllocatedBytes / (openRate * duration.TotalSeconds) / 1024:0.0} KiB allocated per search");
        // Every search in flight during a pause waits it out: the longest pauses set a tail.
        report.Fact(
            "open model, each of the supernode's ephemeral collections paused it (its metrics' buckets)",
            string.Create(CultureInfo.InvariantCulture, $"{openPauses.Count:0} pauses, mean {openPauses.Mean * 1000:0.0} ms; p50 / p99 / longest at most {openPauses.AtMost(0.5) * 1000:0.#} / {openPauses.AtMost(0.99) * 1000:0.#} / {openPauses.AtMost(1) * 1000:0.#} ms"));
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["listings"] = listings.ToString(CultureInfo.InvariantCulture),
            ["shards"] = shards.ToString(CultureInfo.InvariantCulture),
            ["index"] = onDisk ? "on disk" : "in memory",
            ["workers"] = workers.ToString(CultureInfo.InvariantCulture),
            ["seconds"] = duration.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["query"] = "two words + price range in one currency, top 20",
            ["settings"] = extraSettings.Length == 0 ? "defaults" : string.Join(' ', extraSettings),
        });
        return 0;
    }

    /// <summary>The baseline: the same queries in this process, on one index holding every listing, kept as the shards keep theirs.</summary>
    private static async Task<(double Exact, double Forgiving, TimeSpan CpuPerSearch, double WrittenRate, TimeSpan WrittenCpuPerSearch)> InProcessAsync(Corpus corpus, IReadOnlyList<SearchRequest> queries, string? path, int workers, TimeSpan duration, Report report)
    {
        var clock = Stopwatch.StartNew();
        var before = GC.GetTotalMemory(true);
        using var local = new ListingIndex(path: path);
        foreach (var item in corpus.Items)
        {
            local.Add(item.Stored);
        }

        local.Refresh();
        report.Fact("in-process index build", $"{corpus.Items.Count / clock.Elapsed.TotalSeconds:N0} listings/s; managed heap +{(GC.GetTotalMemory(true) - before) >> 20} MiB");
        var localQueries = queries.Select(ToQuery).ToArray();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Task Local(int i)
        {
            local.Search(localQueries[i % localQueries.Length], 20, now);
            return Task.CompletedTask;
        }

        var matchingNothing = localQueries.Count(q => local.Search(q, 1, now).TotalHits == 0);
        report.Fact("queries matching nothing with every word (the supernode then suggests a correction and tries leaving a word out)", $"{matchingNothing / (double)localQueries.Length:P1}");

        // What forgiving search costs: the same queries with every word taken as written.
        local.Forgiving = false;
        await Drivers.ClosedAsync(workers, Warmup, report.Series("warm-up (ignored)"), Local);
        var exactRate = await Drivers.ClosedAsync(workers, duration, report.Series("in-process, exact words only"), Local);
        local.Forgiving = true;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var localRate = await Drivers.ClosedAsync(workers, duration, report.Series("in-process, one Lucene index"), Local);
        var cpuPerSearch = (Process.GetCurrentProcess().TotalProcessorTime - cpu) / (localRate * duration.TotalSeconds);
        report.Fact("in-process, forgiving (typos, synonyms, word parts) / exact words only", $"{localRate / exactRate:0.00} ({localRate:N0} vs {exactRate:N0} searches/s)");

        // The index's own tail under an open model at half its rate, beside the supernode's at half its
        // rate: what Lucene alone, with nothing between it and the caller, answers at the 99th percentile.
        var localOpenRate = Math.Max(1, Math.Round(localRate / 2));
        await Drivers.OpenAsync(localOpenRate, duration, report.Series($"in-process, one Lucene index, open model at {localOpenRate:0}/s"), i => Task.Run(() => Local(i)));

        // The index alone under the supernode's written phase: new listings added at the same trickle,
        // each searchable by the next search (as the supernode promises), after as long a warm-up.
        var (writtenRate, writtenCpu) = await IndexScenario.WhileAddedAsync(local, localQueries, now, workers, PublishesWhileSearching, SupernodeWarmup, duration, report, "in-process, one Lucene index");

        return (exactRate, localRate, cpuPerSearch, writtenRate, writtenCpu);
    }

    internal static SearchQuery ToQuery(SearchRequest request) => new(
        request.Text,
        ListingRules.ToMicros(request.MinPrice),
        ListingRules.ToMicros(request.MaxPrice),
        request.Currency,
        null,
        null,
        null,
        null,
        null,
        SearchOrder.Relevance);
}

/// <summary>The supernode's search-stage histograms (<c>hybrid_search_stage_seconds</c>), read at once; subtract two reads for a phase's.</summary>
internal sealed record SearchStages(BucketCounts[] Stages)
{
    /// <summary>The stages, in the order a search meets them.</summary>
    private static readonly string[] Names = ["shard.call", "shard.queued", "shard.search", "shard.resumed", "page"];

    public static async Task<SearchStages> ReadAsync(SupernodeProcess node) =>
        new(await Task.WhenAll(Names.Select(n => node.HistogramAsync("hybrid_search_stage_seconds", $"stage=\"{n}\""))));

    public static SearchStages operator -(SearchStages a, SearchStages b) => new([.. a.Stages.Zip(b.Stages, (x, y) => x - y)]);

    /// <summary>Each stage: how often a search met it, its mean and its p99's bucket bound, over <paramref name="searches"/> searches.</summary>
    public string Describe(double searches) => string.Join("; ", Names.Select((name, i) =>
        $"{name} {Stages[i].Count / Math.Max(1, searches):0.#}×, {Stages[i].Mean * 1000:0.00} ms, ≤ {Stages[i].AtMost(0.99) * 1000:0.#} ms"));
}
