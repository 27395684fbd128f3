using System.Diagnostics;
using System.Globalization;
using Hybrid.Index.Federation;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Federation;
using Hybrid.Supernode.Storage;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Federation: (1) the bytes range-based reconciliation sends to find what differs between two
/// sets of listing versions, against listing the whole set (in-process, the wire messages as sent);
/// (2) real processes: time for new listings to reach a third cluster through a second, and for an
/// empty cluster to catch up with one holding many listings.
/// </summary>
internal static class FederationScenario
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(20);
    private const string Baseline = "reconciling two sets in-process, whole pull (baseline)";

    public static async Task<int> RunAsync(int setSize, int catchUp, int[] convergence, bool reviews, string[] settings, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("federation", Baseline);
        ReconciliationBytes(report, setSize);
        if (catchUp > 0)
        {
            await ConvergenceAsync(report, convergence, reviews, [.. settings.Select(s => $"--Supernode:{s}")], cancellationToken);
            await CatchUpAsync(report, catchUp, cancellationToken);
        }
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["set"] = setSize.ToString(CultureInfo.InvariantCulture),
            ["catch-up listings"] = catchUp.ToString(CultureInfo.InvariantCulture),
            ["convergence"] = string.Join(",", convergence),
        });
        return 0;
    }

    /// <summary>Runs the puller's side of reconciliation against a holder, counting the bytes of every request and reply.</summary>
    private static void ReconciliationBytes(Report report, int size)
    {
        var random = new Random(11);
        const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";
        var ids = Enumerable.Range(0, size).Select(_ => new string([.. Enumerable.Range(0, 26).Select(_ => Base32[random.Next(32)])])).ToList();
        var holder = new VersionSet(ids.Select(id => new VersionedId(id, 1)));
        var whole = new ReconcileReply();
        var all = new RangeReply();
        all.Items.AddRange(ids.Select(id => new ListingVersion { ListingId = id, Version = 1 }));
        whole.Ranges.Add(all);
        var wholeBytes = whole.CalculateSize();
        report.Fact($"listing the whole set of {size:N0} (id, version)", $"{wholeBytes:N0} bytes");
        var pulls = report.Series(Baseline);
        foreach (var share in new[] { 0.001, 0.01, 0.1 })
        {
            // The puller lacks every (1 / share)-th listing: differences spread over the whole set.
            var step = (int)Math.Round(1 / share);
            var puller = new VersionSet(ids.Where((_, i) => i % step != 0).Select(id => new VersionedId(id, 1)));
            var differing = holder.Count - puller.Count;
            var clock = Stopwatch.StartNew();
            var pending = new List<Index.Federation.IdRange> { Index.Federation.IdRange.All };
            long bytes = 0;
            var requests = 0;
            var wanted = 0;
            while (pending.Count > 0)
            {
                var answered = new List<RangeAnswer>();
                foreach (var asked in pending.Chunk(FederationWire.MaxRanges))
                {
                    requests++;
                    var request = new ReconcileRequest();
                    request.Ranges.AddRange(asked.Select(r => FederationWire.ToWire(r, puller.FingerprintOf(r))));
                    var answers = asked.Select(r => Reconciliation.Answer(holder, r, puller.FingerprintOf(r))).ToList();
                    answered.AddRange(answers);
                    var reply = new ReconcileReply();
                    reply.Ranges.AddRange(answers.Select(FederationWire.ToWire));

                    bytes += request.CalculateSize() + reply.CalculateSize();
                }

                var (want, next) = Reconciliation.Read(puller, puller.VersionOf, answered);
                wanted += want.Count;
                pending = next;
            }

            Report.Record(pulls, clock.Elapsed);
            report.Fact(
                $"sets differing by {share:P1} ({differing:N0} of {size:N0})",
                $"{bytes:N0} bytes in {requests} requests: {bytes / (double)differing:N0} bytes per differing listing, {bytes / (double)wholeBytes:0.000} of listing the whole set; found {wanted:N0}");
        }
    }

    /// <summary>Three clusters in a line, A - B - C: listings published in A, timed until every one is searchable in C.</summary>
    private static async Task ConvergenceAsync(Report report, int[] counts, bool withReviews, string[] settings, CancellationToken cancellationToken)
    {
        foreach (var count in counts)
        {
            using var temp = new TempDir();
            var ports = Enumerable.Range(0, 3).Select(_ => Ports.Free()).ToArray();
            string Url(int i) => $"http://127.0.0.1:{ports[i]}";
            var nodes = new[]
            {
                SupernodeProcess.Launch(ports[0], temp.Sub("a"), [Interval, Open, OpenBurst, $"--Supernode:Federation:Peers={Url(1)}", .. settings]),
                SupernodeProcess.Launch(ports[1], temp.Sub("b"), [Interval, Open, OpenBurst, $"--Supernode:Federation:Peers={Url(0)},{Url(2)}", .. settings]),
                SupernodeProcess.Launch(ports[2], temp.Sub("c"), [Interval, Open, OpenBurst, $"--Supernode:Federation:Peers={Url(1)}", .. settings]),
            };
            try
            {
                await Task.WhenAll(nodes.Select(n => n.WaitReadyAsync(failWhenExited: true)));
                var corpus = Corpus.Create(count, sellers: Math.Max(1, count / 100), seed: count);
                var clock = Stopwatch.StartNew();
                await Parallel.ForEachAsync(corpus.Items, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (item, ct) =>
                    await nodes[0].Client.Listings.PublishListingAsync(item.Envelope, cancellationToken: ct));
                var published = clock.Elapsed;
                await Eventually.TrueAsync(async () => await CountAsync(nodes[2]) >= count, Deadline, $"{count} listings in cluster C");
                report.Fact($"{count:N0} new listings: published in A, then all searchable in C (through B)", $"{published.TotalSeconds:0.0} s to publish, then {(clock.Elapsed - published).TotalSeconds:0.0} s (pull interval 1 s)");
                if (count >= SearchComparisonAt)
                {
                    await SearchRatesAsync(report, corpus, nodes, temp, settings, cancellationToken);
                }

                if (!withReviews)
                {
                    continue;
                }

                // As many reviews (each of a real, co-signed order) of ten sellers, written in A, until C counts them all.
                var sellers = Enumerable.Range(0, 10).Select(_ => PeerIdentity.Generate()).ToArray();
                var reviews = Enumerable.Range(0, count).Select(i =>
                {
                    using var buyer = PeerIdentity.Generate();
                    var seller = sellers[i % sellers.Length];
                    return Trades.Review(buyer, seller.Id, Trades.Complete(buyer, seller), (uint)(1 + (i % 5)));
                }).ToList();
                clock.Restart();
                await Parallel.ForEachAsync(reviews, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (review, ct) =>
                    await nodes[0].Client.Reputation.SubmitReviewAsync(review, cancellationToken: ct));
                var submitted = clock.Elapsed;
                await Eventually.TrueAsync(
                    async () => (await Task.WhenAll(sellers.Select(s => nodes[2].Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = s.Id.ToString() }).ResponseAsync))).Sum(r => r.Count) >= count,
                    Deadline,
                    $"{count} reviews counted in cluster C");
                report.Fact($"{count:N0} new reviews: submitted in A, then all counted in C's reputation (through B)", $"{submitted.TotalSeconds:0.0} s to submit, then {(clock.Elapsed - submitted).TotalSeconds:0.0} s (pull interval 1 s)");
                foreach (var seller in sellers)
                {
                    seller.Dispose();
                }
            }
            finally
            {
                foreach (var node in nodes)
                {
                    await node.DisposeAsync();
                }
            }
        }
    }

    /// <summary>Below this many listings a search comparison says little: it runs at the larger convergence counts only.</summary>
    private const int SearchComparisonAt = 10_000;

    /// <summary>
    /// Searches a second: cluster C (which federates, pulling from B every second) against a lone
    /// supernode holding the same listings (published to it directly), the same query mix, one after
    /// the other in the same run.
    /// </summary>
    private static async Task SearchRatesAsync(Report report, Corpus corpus, SupernodeProcess[] clusters, TempDir temp, string[] settings, CancellationToken cancellationToken)
    {
        var federated = clusters[2];
        await using var lone = SupernodeProcess.Launch(Ports.Free(), temp.Sub("lone"), [Open, OpenBurst, .. settings]);
        await lone.WaitReadyAsync(failWhenExited: true);
        await Parallel.ForEachAsync(corpus.Items, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (item, ct) =>
            await lone.Client.Listings.PublishListingAsync(item.Envelope, cancellationToken: ct));
        await Eventually.TrueAsync(async () => await CountAsync(lone) >= corpus.Items.Count, Deadline, "every listing searchable in the lone supernode");
        // Both sides as they settle once writes stop: a shard quiet for a sweep interval (30 s) may
        // fold its small segments (SearchCompactWhenQuiet); two intervals and a little more.
        var segmentsBefore = (await federated.MetricAsync("hybrid_search_index_segments"), await lone.MetricAsync("hybrid_search_index_segments"));
        await Task.Delay(TimeSpan.FromSeconds(65), cancellationToken);
        report.Fact("Lucene segments of the search shards once writes stopped: cluster C / lone supernode", $"{segmentsBefore.Item1:0} / {segmentsBefore.Item2:0}");
        report.Fact("quiet compactions before searching: cluster C / lone supernode", $"{await federated.MetricAsync("hybrid_search_index_compactions"):0} / {await lone.MetricAsync("hybrid_search_index_compactions"):0}");
        var queries = corpus.Queries(2_000);
        var rates = new List<double>();
        // What federation itself costs C: its CPU while the lone supernode is searched (C then only pulls and answers pulls).
        var background = TimeSpan.Zero;
        var backgroundClock = TimeSpan.Zero;
        foreach (var (node, name) in new[] { (lone, "lone supernode"), (federated, "federating cluster C"), (lone, "lone supernode, again"), (federated, "federating cluster C, again") })
        {
            var client = node.Client.Listings;
            // A process searched for the first time runs first-tier code for a while: each side warms up as long.
            await Drivers.ClosedAsync(16, TimeSpan.FromSeconds(10), report.Series($"search warm-up, {name} (ignored)"), async i => await client.SearchAsync(queries[i % queries.Count], cancellationToken: cancellationToken));
            // Every process's CPU over the phase: what the searched side spends per search, and what
            // else ran on the same cores meanwhile (clusters A and B, the other side, the runner).
            var processes = new[] { (clusters[0], "A"), (clusters[1], "B"), (federated, "C"), (lone, "lone") };
            var before = processes.Select(p => p.Item1.CpuTime()).ToArray();
            var runnerBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            var rate = await Drivers.ClosedAsync(16, TimeSpan.FromSeconds(10), report.Series($"search, {name}"), async i => await client.SearchAsync(queries[i % queries.Count], cancellationToken: cancellationToken));
            var elapsed = clock.Elapsed;
            rates.Add(rate);
            var spent = processes.Select((p, i) => p.Item1.CpuTime() - before[i]).ToArray();
            var runner = Process.GetCurrentProcess().TotalProcessorTime - runnerBefore;
            var searched = spent[node == lone ? 3 : 2];
            report.Fact(
                $"CPU while searching the {name}, share of a core",
                string.Join(", ", processes.Select((p, i) => $"{p.Item2} {spent[i] / elapsed:P0}")) + $", runner {runner / elapsed:P0}; the searched side {searched.TotalMilliseconds / (rate * elapsed.TotalSeconds):0.00} ms per search");
            if (node == lone)
            {
                background += spent[2];
                backgroundClock += elapsed;
            }
        }

        report.Fact(
            $"searches a second at {corpus.Items.Count:N0} listings, 16 in flight: federating cluster C / lone supernode",
            $"{rates[1]:N0} / {rates[0]:N0} and {rates[3]:N0} / {rates[2]:N0} (ratio {(rates[1] + rates[3]) / (rates[0] + rates[2]):0.00})");
        report.Fact("Lucene segments of the search shards when searched: cluster C / lone supernode", $"{await federated.MetricAsync("hybrid_search_index_segments"):0} / {await lone.MetricAsync("hybrid_search_index_segments"):0}");
        report.Fact("deleted documents still in the search shards' segments: cluster C / lone supernode", $"{await federated.MetricAsync("hybrid_search_index_deleted"):0} / {await lone.MetricAsync("hybrid_search_index_deleted"):0}");
        report.Fact("cluster C's own CPU while not searched (pulling from B and answering B's pulls every second)", $"{background / backgroundClock:P1} of a core");
    }

    /// <summary>A cluster holding <paramref name="count"/> listings, and an empty one that starts pulling from it.</summary>
    private static async Task CatchUpAsync(Report report, int count, CancellationToken cancellationToken)
    {
        using var temp = new TempDir();
        var full = temp.Sub("full");
        Directory.CreateDirectory(full);
        var corpus = Corpus.Create(count);
        await using (var database = new SqliteDatabase(Path.Combine(full, "index.db")))
        {
            await corpus.SeedAsync(new SqliteListingStore(database), 2);
        }

        var fullPort = Ports.Free();
        await using var holder = SupernodeProcess.Launch(fullPort, full, Open, OpenBurst);
        await holder.WaitReadyAsync(TimeSpan.FromMinutes(5), failWhenExited: true);
        var clock = Stopwatch.StartNew();
        await using var empty = SupernodeProcess.Launch(temp.Sub("empty"), Interval, Open, OpenBurst, $"--Supernode:Federation:Peers=http://127.0.0.1:{fullPort}", $"--Supernode:Federation:MaxListingsPerRound={count}");
        await empty.WaitReadyAsync(failWhenExited: true);
        await Eventually.TrueAsync(async () => await CountAsync(empty) >= count, Deadline, $"{count} listings in the empty cluster");
        report.Fact($"an empty cluster catching up with one holding {count:N0} listings", $"{clock.Elapsed.TotalSeconds:0.0} s from its start ({count / clock.Elapsed.TotalSeconds:N0} listings/s)");
        cancellationToken.ThrowIfCancellationRequested();
    }

    private const string Interval = "--Supernode:Federation:Interval=00:00:01";
    private const string Open = "--Supernode:RequestsPerSecond=100000";
    private const string OpenBurst = "--Supernode:RequestBurst=100000";

    private static async Task<long> CountAsync(SupernodeProcess node) =>
        (await node.Client.Listings.SearchAsync(new SearchRequest { Limit = 1 })).TotalHits;
}
