using System.Diagnostics;
using System.Globalization;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Three supernodes on one Redis; many peers in session on one of them; kill -9 it. Measured per
/// peer: kill to back in session on a survivor, and kill to lookups through a survivor showing the
/// peer online again (for a sample of the peers). Baseline: opening a session on a healthy
/// supernode (64 at a time), in the same run. The peers live in runner processes of their own, at
/// most <see cref="FailoverPeers.PerProcess"/> each (<see cref="FailoverPeers"/>).
/// </summary>
internal static class FailoverScenario
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>Seconds after the kill at which the peers back in session are counted.</summary>
    private static readonly int[] Milestones = [1, 2, 5, 10, 20, 40, 80];

    /// <summary>The supernodes' histogram of how long work waited for a thread.</summary>
    private const string SchedulingDelay = "hybrid_scheduling_delay_seconds";

    /// <summary>Peers whose lookups are polled after the kill (each every 100 ms): a sample, so the polling does not load the survivors it measures.</summary>
    private const int LookupSample = 500;

    public static async Task<int> RunAsync(int runs, int peers, IReadOnlyList<string> settings, string reportFolder, CancellationToken cancellationToken)
    {
        // Every load peer comes from 127.0.0.1, which the per-address limit for anonymous calls would
        // (rightly) treat as one abusive client; lift it so the run measures failover, not the limiter.
        string[] supernodeArgs = ["--Supernode:RequestsPerSecond=100000", "--Supernode:RequestBurst=100000", .. settings.Select(s => $"--Supernode:{s}")];
        var report = new Report("failover", "open a session on a healthy supernode");
        var baseline = report.Series("open a session on a healthy supernode");
        var backInSession = report.Series("kill -9 to back in session");
        var lookupsAnswer = report.Series($"kill -9 to lookup shows peer online (up to {LookupSample} peers)");
        await using var cluster = await TestCluster.StartAsync(3, supernodeArgs);
        var nodes = cluster.Nodes.ToList();

        for (var run = 0; run < runs && !cancellationToken.IsCancellationRequested; run++)
        {
            var victim = nodes[0];
            var survivor = nodes[1];
            await using var group = await FailoverPeers.OpenAsync(peers, victim.GrpcUrl, Deadline, cancellationToken);
            foreach (var opening in group.Opening)
            {
                Report.Record(baseline, opening);
            }

            // Two survivors on this box take in a few hundred sessions a second while the cluster
            // settles: a large herd is given time in proportion (10 ms a peer, a minute at least).
            var herdDeadline = TimeSpan.FromMilliseconds(Math.Max(Deadline.TotalMilliseconds, peers * 10.0));
            var survivors = nodes.Skip(1).ToList();
            TimeSpan SurvivorsCpu() => survivors.Aggregate(TimeSpan.Zero, (sum, n) => sum + n.CpuTime());
            var cpuAtKill = (Peers: group.CpuTime(), Survivors: SurvivorsCpu());
            var turnedAwayAtKill = await TurnedAwayAsync(survivors);
            var delaysAtKill = new Dictionary<SupernodeProcess, BucketCounts>();
            foreach (var node in survivors)
            {
                delaysAtKill[node] = await node.HistogramAsync(SchedulingDelay);
            }

            var missedAtKill = await MissedProbesAsync(survivors);
            var killedAt = DateTimeOffset.UtcNow;
            victim.KillHard();
            // Lookups are polled from the moment of the kill: the peer counts as found again once a
            // survivor shows it online through a supernode other than the dead one.
            var lookups = Task.WhenAll(group.Peers.Take(LookupSample).Select(async id =>
            {
                await Eventually.TrueAsync(
                    async () => await survivor.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = id }) is { Online: true } info && info.SupernodeUrl != victim.GrpcUrl,
                    herdDeadline,
                    $"lookup of {id} online through {survivor.GrpcUrl}");
                Report.Record(lookupsAnswer, DateTimeOffset.UtcNow - killedAt);
            }));
            // Midway, what the peers not back yet last saw: where a herd waits, grouped.
            using var midway = new CancellationTokenSource();
            var stuckMidway = StuckMidwayAsync(group, peers, midway.Token);
            try
            {
                await Eventually.ReturnsAsync(() => Task.FromResult(group.Moved.Count), count => count == peers, herdDeadline, $"all {peers} peers back in session (the count is how many were)");
                await lookups;
            }
            catch (TimeoutException)
            {
                await KeepEvidenceAsync(survivors, delaysAtKill, reportFolder);
                // A survivor that stopped (declared dead while busy, it stops itself) explains most failures: say so first.
                foreach (var lost in nodes.Skip(1).Where(n => n.HasExited))
                {
                    Console.Error.WriteLine($"survivor {lost.GrpcUrl} exited with code {lost.ExitCode}; its last output:{Environment.NewLine}{string.Join(Environment.NewLine, lost.Output.Split('\n').Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).TakeLast(15))}");
                }

                foreach (var stuck in (await group.StuckAsync()).Take(50))
                {
                    Console.Error.WriteLine(stuck);
                }

                throw;
            }

            // All back, but a survivor may have been declared dead meanwhile (and stopped itself): that is a failed run, said plainly.
            if (survivors.FirstOrDefault(n => n.HasExited) is { } fallen)
            {
                await KeepEvidenceAsync(survivors, delaysAtKill, reportFolder);
                throw new InvalidOperationException($"all {peers} peers were back, but survivor {fallen.GrpcUrl} stopped during the herd (exit {fallen.ExitCode}; 134: the cluster declared it dead). Its last output:{Environment.NewLine}{string.Join(Environment.NewLine, fallen.Output.Split('\n').Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).TakeLast(8))}");
            }

            await midway.CancelAsync();
            await stuckMidway;
            var times = group.Moved.Values.Select(at => at - killedAt).ToList();
            report.Fact(
                $"run {run + 1}: peers back in session, by time after the kill",
                string.Join(", ", Milestones.Where(s => s <= Math.Ceiling(times.Max().TotalSeconds) * 2).Select(s => string.Create(CultureInfo.InvariantCulture, $"{s} s: {times.Count(t => t.TotalSeconds <= s)}"))));
            // Who had the two cores while the peers came back: the survivors, or the peers' own processes.
            var herd = DateTimeOffset.UtcNow - killedAt;
            var (peersCpu, survivorsCpu) = (group.CpuTime() - cpuAtKill.Peers, SurvivorsCpu() - cpuAtKill.Survivors);
            report.Fact(
                $"run {run + 1}: CPU from the kill until all were back ({herd.TotalSeconds:0.0} s), in cores",
                string.Create(CultureInfo.InvariantCulture, $"survivors {survivorsCpu / herd:0.00}, peers' processes {peersCpu / herd:0.00}"));
            // Why peers had to try again while the herd came back: each retry costs a peer its backoff.
            // The runner's own look-ups (how "lookup shows peer online" is timed) are counted apart.
            var turnedAway = await TurnedAwayAsync(survivors);
            var why = turnedAway.Select(kv => (kv.Key, Count: kv.Value - turnedAwayAtKill.GetValueOrDefault(kv.Key))).Where(kv => kv.Count > 0).ToList();
            static string Counts(IEnumerable<(string Key, double Count)> counts) =>
                counts.Any() ? string.Join(", ", counts.OrderByDescending(w => w.Count).Select(w => string.Create(CultureInfo.InvariantCulture, $"{w.Key} {w.Count:0}"))) : "none";
            var runnerLookups = why.Where(w => w.Key.Contains("/LookupPeer", StringComparison.Ordinal)).ToList();
            report.Fact($"run {run + 1}: session attempts the survivors turned away during the herd", Counts(why.Except(runnerLookups)));
            report.Fact($"run {run + 1}: the runner's look-ups the survivors could not answer during the herd", Counts(runnerLookups));
            // How long work waited for a thread on the survivors meanwhile: near the probe timeout, the cluster declares them dead.
            report.Fact($"run {run + 1}: survivors' scheduling delay during the herd", await DelaySummaryAsync(survivors, delaysAtKill));
            // Probes that went unanswered between the survivors: each is a step towards declaring a busy survivor dead.
            report.Fact($"run {run + 1}: liveness probes between the survivors that went unanswered", (await MissedProbesAsync(survivors) - missedAtKill).ToString("0", CultureInfo.InvariantCulture));
            foreach (var time in times)
            {
                Report.Record(backInSession, time);
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"run {run + 1}/{runs}: all {peers} peers, held by {(peers + FailoverPeers.PerProcess - 1) / FailoverPeers.PerProcess} runner processes, back in session after {times.Max().TotalSeconds:0.00} s"));
            await group.DisposeAsync();

            // Replace the dead supernode so every run starts from three.
            nodes.RemoveAt(0);
            var replacement = SupernodeProcess.Launch(
                Path.Combine(Path.GetTempPath(), $"hybrid-load-{Guid.NewGuid():N}"),
                [.. ClusterArgs(cluster), .. supernodeArgs]);
            await replacement.WaitReadyAsync();
            cluster.Nodes.Add(replacement);
            nodes.Add(replacement);
        }

        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["runs"] = runs.ToString(CultureInfo.InvariantCulture),
            ["peers"] = peers.ToString(CultureInfo.InvariantCulture),
            ["supernodes"] = "3",
            ["settings"] = settings.Count == 0 ? "defaults" : string.Join(' ', settings),
        });
        return 0;
    }

    /// <summary>
    /// Calls the survivors refused or failed, summed over them: sessions refused by reason ("busy":
    /// too many handshakes at once), and calls answered Unavailable by the cluster fault behind them.
    /// </summary>
    private static async Task<Dictionary<string, double>> TurnedAwayAsync(IEnumerable<SupernodeProcess> survivors)
    {
        var sum = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var node in survivors)
        {
            foreach (var (name, label) in new[] { ("hybrid_sessions_refused_total", "refused"), ("hybrid_calls_unavailable_total", "unavailable") })
            {
                foreach (var (series, value) in await node.SeriesAsync(name))
                {
                    var key = $"{label} {series.Trim('{', '}')}";
                    sum[key] = sum.GetValueOrDefault(key) + value;
                }
            }
        }

        return sum;
    }

    /// <summary>
    /// Five seconds after the kill, and every ten after, while peers are not back: how many, and
    /// what their connections last saw, grouped (addresses and peer ids left out), on the console.
    /// </summary>
    private static async Task StuckMidwayAsync(FailoverPeers group, int peers, CancellationToken cancellationToken)
    {
        var after = Stopwatch.StartNew();
        try
        {
            for (var at = TimeSpan.FromSeconds(5); ; at += TimeSpan.FromSeconds(10))
            {
                await Task.Delay(at - after.Elapsed, cancellationToken);
                var lines = (await group.StuckAsync()).ToLookup(l => l.StartsWith(FailoverPeers.RunnerLine, StringComparison.Ordinal));
                foreach (var runner in lines[true])
                {
                    Console.WriteLine($"  {runner}");
                }

                var kinds = lines[false]
                    .Select(line => System.Text.RegularExpressions.Regex.Replace(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..], @"https?://[\d.:]+|[A-Z2-7]{7}(-[A-Z2-7]{7}){7}", "…"))
                    .Select(line => line.Length > 160 ? line[..160] : line)
                    .GroupBy(k => k)
                    .OrderByDescending(g => g.Count())
                    .Take(5);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{at.TotalSeconds:0} s after the kill, {lines[false].Count()} of {peers} peers not back; what they last saw:"));
                foreach (var kind in kinds)
                {
                    Console.WriteLine($"  {kind.Count(),6}  {kind.Key}");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Liveness probes the survivors sent that went unanswered (Orleans's own counter; it appears once a probe is missed).</summary>
    private static async Task<double> MissedProbesAsync(IEnumerable<SupernodeProcess> survivors)
    {
        var sum = 0.0;
        foreach (var node in survivors.Where(n => !n.HasExited))
        {
            foreach (var name in new[] { "microsoft_orleans_orleans_messaging_pings_reply_missed", "microsoft_orleans_orleans_messaging_pings_reply_missed_total" })
            {
                sum += (await node.SeriesAsync(name)).Values.Sum();
            }
        }

        return sum;
    }

    /// <summary>How the survivors still running spread their scheduling delay since <paramref name="before"/>: the shares of samples over 32, 128 and 512 ms, and the longest.</summary>
    private static async Task<string> DelaySummaryAsync(IEnumerable<SupernodeProcess> survivors, Dictionary<SupernodeProcess, BucketCounts> before)
    {
        var delays = new BucketCounts([]);
        foreach (var node in survivors.Where(n => !n.HasExited))
        {
            delays += await node.HistogramAsync(SchedulingDelay) - before[node];
        }

        return string.Create(CultureInfo.InvariantCulture, $"{delays.Count:0} samples: {delays.ShareOver(0.032):P1} over 32 ms, {delays.ShareOver(0.128):P1} over 128 ms, {delays.ShareOver(0.512):P1} over 512 ms; longest up to {delays.AtMost(1) * 1000:0} ms");
    }

    /// <summary>
    /// A failed run's evidence: every survivor's whole output beside the report (the membership log
    /// says who suspected whom, and when), and the scheduling delay of those still running.
    /// </summary>
    private static async Task KeepEvidenceAsync(IEnumerable<SupernodeProcess> survivors, Dictionary<SupernodeProcess, BucketCounts> delaysAtKill, string reportFolder)
    {
        Directory.CreateDirectory(reportFolder);
        foreach (var node in survivors)
        {
            var path = Path.Combine(reportFolder, $"failover-survivor-{new Uri(node.GrpcUrl).Port}.log");
            await File.WriteAllTextAsync(path, node.Output);
            Console.Error.WriteLine($"survivor {node.GrpcUrl}'s output: {path}");
        }

        try
        {
            Console.Error.WriteLine($"scheduling delay on the survivors still running, since the kill: {await DelaySummaryAsync(survivors, delaysAtKill)}");
        }
        catch (HttpRequestException e)
        {
            Console.Error.WriteLine($"scheduling delay on the survivors not read: {e.Message}");
        }
    }

    private static string[] ClusterArgs(TestCluster cluster) =>
    [
        $"--Supernode:Redis={cluster.Redis.ConnectionString}",
        $"--Supernode:ClusterId={cluster.ClusterId}",
        $"--Supernode:SiloPort={Ports.Free()}",
        $"--Supernode:GatewayPort={Ports.Free()}",
        "--Supernode:AdvertisedUrl=http://127.0.0.1:{grpcPort}",
    ];
}
