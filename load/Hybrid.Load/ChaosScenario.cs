using System.Globalization;
using Hybrid.Testing.Chaos;

namespace Hybrid.Load;

/// <summary>
/// Acknowledged writes under faults: writers through random supernodes while a seeded schedule
/// kills, pauses and restarts supernodes and restarts Redis; then everything is read back through
/// every supernode. Lost, stale and disagreeing derived views are counted (goal: 0 each), with
/// availability by fault.
/// </summary>
internal static class ChaosScenario
{
    public static async Task<int> RunAsync(ChaosSettings settings, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("chaos", "acknowledged write, no fault active (baseline)");
        var series = new Dictionary<string, HdrHistogram.LongHistogram>(StringComparer.Ordinal)
        {
            ["none"] = report.Series("acknowledged write, no fault active (baseline)"),
            ["kill"] = report.Series("acknowledged write, a supernode just killed (-9)"),
            ["pause"] = report.Series("acknowledged write, a supernode paused (SIGSTOP)"),
            ["redis"] = report.Series("acknowledged write, Redis restarting"),
        };
        var result = await ChaosRun.RunAsync(
            new ChaosSettings
            {
                Supernodes = settings.Supernodes,
                Embedded = settings.Embedded,
                Writers = settings.Writers,
                Duration = settings.Duration,
                FaultEvery = settings.FaultEvery,
                PauseFor = settings.PauseFor,
                Seed = settings.Seed,
                SupernodeArgs = settings.SupernodeArgs,
                Log = settings.Log,
                OnCall = (fault, latency) =>
                {
                    if (series.TryGetValue(fault, out var histogram))
                    {
                        Report.Record(histogram, latency);
                    }
                },
            },
            cancellationToken);
        report.Fact("seed", result.Seed.ToString(CultureInfo.InvariantCulture));
        report.Fact("acknowledged: listings (latest versions) / reviews / replies / mail deposits", $"{result.ListingsAcknowledged:N0} / {result.ReviewsAcknowledged:N0} / {result.RepliesAcknowledged:N0} / {result.MailAcknowledged:N0}");
        report.Fact("writes never acknowledged (gave up or refused)", result.Unacknowledged.ToString("N0", CultureInfo.InvariantCulture));
        foreach (var (why, count) in result.Unanswered.OrderByDescending(u => u.Value).Take(5))
        {
            report.Fact($"  not acknowledged: {why}", count.ToString("N0", CultureInfo.InvariantCulture));
        }

        report.Fact("lost (goal 0)", result.Lost.Count.ToString(CultureInfo.InvariantCulture));
        report.Fact("stale (goal 0)", result.Stale.Count.ToString(CultureInfo.InvariantCulture));
        report.Fact("derived views disagreeing (goal 0)", result.Disagreements.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var (fault, (calls, answered)) in result.Availability.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            report.Fact($"calls answered while {fault}", $"{answered:N0} of {calls:N0} ({100.0 * answered / Math.Max(1, calls):0.0} %)");
        }

        report.Fact("faults", result.Faults.Count.ToString(CultureInfo.InvariantCulture));
        report.Fact("supernodes that exited by themselves", result.SelfExits.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var line in result.Lost.Concat(result.Stale).Concat(result.Disagreements).Concat(result.SelfExits).Take(20))
        {
            Console.WriteLine($"  {line}");
        }

        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["seed"] = settings.Seed.ToString(CultureInfo.InvariantCulture),
            ["supernodes"] = settings.Embedded ? "1 (embedded)" : settings.Supernodes.ToString(CultureInfo.InvariantCulture),
            ["writers"] = settings.Writers.ToString(CultureInfo.InvariantCulture),
            ["seconds"] = settings.Duration.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["fault_every_seconds"] = settings.FaultEvery.TotalSeconds.ToString(CultureInfo.InvariantCulture),
        });
        return result.Clean ? 0 : 1;
    }
}
