using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Grpc.Net.Client;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// The baseline every other scenario is compared with: a no-op unary gRPC call (ListCategories),
/// closed model over several connections, then an open model at a fixed rate (latency from the
/// moment each call was due). Cross-check: h2load drives the same call with a prebuilt
/// length-prefixed body in the same run, so the runner's own ceiling is known (goal: runner >= 0.6 of h2load).
/// </summary>
internal static partial class NoopScenario
{
    private const string Path = "/hybrid.v1.ListingsApi/ListCategories";

    public static async Task<int> RunAsync(string? target, int connections, int workers, TimeSpan duration, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("noop", "no-op gRPC call, closed model");
        using var temp = new TempDir();
        SupernodeProcess? node = null;
        if (string.IsNullOrEmpty(target))
        {
            node = await SupernodeProcess.StartAsync(temp.Sub("sn"), "--Supernode:RequestsPerSecond=10000000", "--Supernode:RequestBurst=10000000");
            target = node.GrpcUrl;
        }

        try
        {
            var channels = Enumerable.Range(0, connections).Select(_ => GrpcChannel.ForAddress(target)).ToList();
            var clients = channels.Select(c => new Protocol.Api.SupernodeClients(c)).ToList();
            var request = new ListCategoriesRequest();
            Task Call(int i) => clients[i % clients.Count].Listings.ListCategoriesAsync(request, cancellationToken: cancellationToken).ResponseAsync;

            await Drivers.ClosedAsync(workers, TimeSpan.FromSeconds(6), report.Series("warm-up (ignored)"), Call);
            var closed = await Drivers.ClosedAsync(workers, duration, report.Series("no-op gRPC call, closed model"), Call);
            report.Fact("runner, closed model", $"{closed:N0} calls/s ({workers} in flight over {connections} connections)");

            // Half the closed-model rate, and no more in flight than the connections have HTTP/2 streams (100 each):
            // beyond that, calls queue inside the client for a free stream and the client, not the supernode, is measured.
            var openRate = Math.Max(100, Math.Round(closed * 0.5 / 100) * 100);
            var (_, dropped) = await Drivers.OpenAsync(openRate, duration, report.Series($"no-op gRPC call, open model at {openRate:N0}/s"), Call, maxInFlight: connections * 100);
            report.Fact("runner, open model", $"{openRate:N0} calls/s offered, {dropped:N0} not sent (in-flight cap)");

            var h2load = await H2LoadAsync(target, connections, workers, (int)Math.Max(10_000, closed * duration.TotalSeconds), temp, cancellationToken);
            if (h2load is { } rate)
            {
                report.Fact("h2load, same call", $"{rate:N0} calls/s ({connections} connections, {workers} streams in all)");
                report.Fact("runner / h2load", $"{closed / rate:0.00} (goal >= 0.6)");
            }
            else
            {
                report.Fact("h2load, same call", "not installed (scripts/install-deps.sh installs nghttp2-client)");
            }

            channels.ForEach(c => c.Dispose());
            await report.WriteAsync(reportFolder, new Dictionary<string, string>
            {
                ["target"] = node is null ? target : "embedded supernode started by the runner",
                ["connections"] = connections.ToString(CultureInfo.InvariantCulture),
                ["workers"] = workers.ToString(CultureInfo.InvariantCulture),
                ["seconds"] = duration.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            });
            return 0;
        }
        finally
        {
            if (node is not null)
            {
                await node.DisposeAsync();
            }
        }
    }

    /// <summary>Runs h2load against the call; null when h2load is not installed.</summary>
    private static async Task<double?> H2LoadAsync(string target, int connections, int streams, int requests, TempDir temp, CancellationToken cancellationToken)
    {
        var h2load = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Select(d => System.IO.Path.Combine(d, "h2load")).FirstOrDefault(File.Exists);
        if (h2load is null)
        {
            return null;
        }

        // An empty protobuf message as one gRPC frame: not compressed, length 0.
        var body = temp.Sub("noop.grpc");
        await File.WriteAllBytesAsync(body, new byte[5], cancellationToken);
        var start = new ProcessStartInfo(h2load) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
        {
            "-n", requests.ToString(CultureInfo.InvariantCulture),
            "-c", connections.ToString(CultureInfo.InvariantCulture),
            "-m", Math.Max(1, streams / connections).ToString(CultureInfo.InvariantCulture),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "-d", body,
            target.TrimEnd('/') + Path,
        })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("h2load did not start");
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var match = FinishedLine().Match(output);
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : throw new InvalidOperationException($"h2load said: {output}");
    }

    [GeneratedRegex(@"finished in [^,]+, ([0-9.]+) req/s")]
    private static partial Regex FinishedLine();
}
