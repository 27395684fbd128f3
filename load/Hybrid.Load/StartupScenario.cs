using System.Diagnostics;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Supernode start to ready. Baseline: the same process started with a bad setting, which loads
/// the runtime and configuration and exits: what any .NET host pays before doing its own work.
/// </summary>
internal static class StartupScenario
{
    public static async Task<int> RunAsync(int runs, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("startup", "dotnet host start and exit");
        var baseline = report.Series("dotnet host start and exit");
        var embedded = report.Series("embedded: start to ready");
        var cluster = report.Series("cluster: join to ready");
        using var temp = new TempDir();
        await using var redis = await RedisServer.StartAsync();
        await using var first = await SupernodeProcess.StartAsync(temp.Sub("seed"), ClusterArgs(redis));

        for (var run = 0; run < runs && !cancellationToken.IsCancellationRequested; run++)
        {
            var clock = Stopwatch.StartNew();
            await using (var failing = SupernodeProcess.Launch(temp.Sub($"bad{run}"), "--Supernode:SiloPort=0"))
            {
                await failing.WaitForExitAsync(TimeSpan.FromSeconds(60));
            }

            Report.Record(baseline, clock.Elapsed);

            clock.Restart();
            await using (var node = await SupernodeProcess.StartAsync(temp.Sub($"embedded{run}")))
            {
                Report.Record(embedded, clock.Elapsed);
            }

            clock.Restart();
            await using (var node = await SupernodeProcess.StartAsync(temp.Sub($"cluster{run}"), ClusterArgs(redis)))
            {
                Report.Record(cluster, clock.Elapsed);
            }

            Console.WriteLine($"run {run + 1}/{runs} done");
        }

        await report.WriteAsync(reportFolder, new Dictionary<string, string> { ["runs"] = runs.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return 0;
    }

    private static string[] ClusterArgs(RedisServer redis) =>
    [
        $"--Supernode:Redis={redis.ConnectionString}",
        "--Supernode:ClusterId=startup",
        $"--Supernode:SiloPort={Ports.Free()}",
        $"--Supernode:GatewayPort={Ports.Free()}",
        "--Supernode:AdvertisedUrl=http://127.0.0.1:{grpcPort}",
    ];
}
