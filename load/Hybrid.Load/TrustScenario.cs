using System.Diagnostics;
using System.Globalization;
using Hybrid.Index.Reputation;

namespace Hybrid.Load;

/// <summary>
/// Global trust at scale, in process: a receipt graph of many peers and reviews (a few pre-trusted,
/// most peers trading a handful of times, some sellers much more), computed cold, then again after
/// a batch of new reviews starting from the previous vector. Baseline: one pass over the graph (a
/// single power iteration), measured on the same graph in the same run.
/// </summary>
internal static class TrustScenario
{
    public static async Task<int> RunAsync(int peers, int receipts, string reportFolder)
    {
        var report = new Report("trust", "one power iteration (baseline)");
        var random = new Random(42);
        var names = Enumerable.Range(0, peers).Select(i => $"peer-{i:D7}").ToArray();
        var preTrusted = names.Take(10).ToArray();

        var before = GC.GetTotalMemory(forceFullCollection: true);
        var build = Stopwatch.StartNew();
        var graph = new TrustGraph();
        for (var r = 0; r < receipts; r++)
        {
            // Sellers follow a skewed popularity (a few sell a lot); buyers are uniform.
            var seller = names[(int)(peers * Math.Pow(random.NextDouble(), 3))];
            var buyer = names[random.Next(peers)];
            if (buyer == seller)
            {
                continue;
            }

            var stars = (uint)(random.NextDouble() < 0.85 ? 5 : random.Next(1, 5));
            var value = Math.Round(5 + (random.NextDouble() * 200));
            graph.Add(buyer, seller, TrustGraph.Contribution(stars, value));
            if (random.NextDouble() < 0.5)
            {
                graph.Add(seller, buyer, TrustGraph.Contribution(5, value));
            }
        }

        var buildTime = build.Elapsed;
        var graphBytes = GC.GetTotalMemory(forceFullCollection: true) - before;
        report.Fact("graph", $"{graph.PeerCount:N0} peers, {graph.EdgeCount:N0} edges from {receipts:N0} receipts, built in {buildTime.TotalSeconds:0.0} s, {graphBytes / (1 << 20):N0} MiB held");

        var baseline = report.Series("one power iteration (baseline)");
        for (var i = 0; i < 5; i++)
        {
            var one = Stopwatch.StartNew();
            graph.Compute(preTrusted, maxIterations: 1);
            Report.Record(baseline, one.Elapsed);
        }

        var cold = report.Series("full computation, cold start");
        var peak = 0L;
        TrustVector? vector = null;
        for (var i = 0; i < 3; i++)
        {
            var run = Stopwatch.StartNew();
            vector = graph.Compute(preTrusted, epsilon: 1e-9);
            Report.Record(cold, run.Elapsed);
            peak = Math.Max(peak, Process.GetCurrentProcess().PeakWorkingSet64);
        }

        report.Fact("cold start", $"{vector!.Iterations} iterations to an L1 change below 1e-9 ({vector.Residual:E1})");

        var warm = report.Series("after 1,000 new reviews, warm start");
        var iterations = 0;
        for (var i = 0; i < 3; i++)
        {
            for (var r = 0; r < 1000; r++)
            {
                graph.Add(names[random.Next(peers)], names[random.Next(peers)], TrustGraph.Contribution(5, 20));
            }

            var run = Stopwatch.StartNew();
            var next = graph.Compute(preTrusted, previous: vector, epsilon: 1e-9);
            Report.Record(warm, run.Elapsed);
            iterations = next.Iterations;
            vector = next;
        }

        report.Fact("warm start", $"{iterations} iterations");
        report.Fact("process peak working set", $"{peak / (1 << 20):N0} MiB");
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["peers"] = peers.ToString(CultureInfo.InvariantCulture),
            ["receipts"] = receipts.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }
}
