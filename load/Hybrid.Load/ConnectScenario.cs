using System.Diagnostics;
using System.Globalization;
using Grpc.Net.Client;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Connection throughput on one embedded supernode: peers open authenticated sessions (connect,
/// challenge, signed proof, profile stored, presence set) with bounded concurrency, then hold them
/// while heartbeating. Baseline: a no-op gRPC call on the same supernode, same run.
/// </summary>
internal static class ConnectScenario
{
    private static readonly HttpClient Http = new();

    public static async Task<int> RunAsync(int peers, int concurrency, TimeSpan hold, string? target, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("connect", "no-op gRPC call");
        using var temp = new TempDir();
        // Against a running network (--target) memory cannot be read; otherwise the runner starts its own supernode.
        await using var node = target is null ? await SupernodeProcess.StartAsync(temp.Sub("data"), "--Supernode:RequestsPerSecond=1000000", "--Supernode:RequestBurst=1000000", "--Supernode:SessionsPerMinute=1000000") : null;
        var url = target ?? node!.GrpcUrl;
        var idleRss = node?.ResidentBytes() ?? 0;

        using (var channel = GrpcChannel.ForAddress(url))
        {
            var client = new Protocol.Api.SupernodeClients(channel);
            var request = new ListCategoriesRequest();
            await Drivers.ClosedAsync(concurrency, TimeSpan.FromSeconds(2), report.Series("warm-up (ignored)"), async _ => await client.Listings.ListCategoriesAsync(request, cancellationToken: cancellationToken));
            var noopRate = await Drivers.ClosedAsync(concurrency, TimeSpan.FromSeconds(10), report.Series("no-op gRPC call"), async _ => await client.Listings.ListCategoriesAsync(request, cancellationToken: cancellationToken));
            report.Fact("no-op gRPC calls (baseline)", $"{noopRate:N0} /s with {concurrency} in flight");
        }

        var identities = Enumerable.Range(0, peers).Select(_ => PeerIdentity.Generate()).ToList();
        var connections = identities.Select(id => new SupernodeConnection(id, new SupernodeConnectionOptions { Seeds = [url], DisplayName = "load peer" })).ToList();
        var opened = report.Series("open a session (connect, challenge, proof, welcome)");
        var gate = new SemaphoreSlim(concurrency);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(connections.Select(async connection =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                var started = Stopwatch.GetTimestamp();
                connection.Start();
                await connection.WaitForSessionAsync(cancellationToken).WaitAsync(TimeSpan.FromMinutes(2), cancellationToken);
                Report.Record(opened, Stopwatch.GetElapsedTime(started));
            }
            finally
            {
                gate.Release();
            }
        }));
        var openRate = peers / clock.Elapsed.TotalSeconds;
        report.Fact("sessions opened", $"{openRate:N0} /s ({peers:N0} peers, {concurrency} opening at a time)");

        // Hold every session (heartbeats every 2 s) and check the supernode counts them all.
        if (node is not null)
        {
            await Eventually.TrueAsync(
                async () => (await Http.GetStringAsync(new Uri($"{node.OpsUrl}/metrics"), cancellationToken)).Contains($"hybrid_sessions_active {peers}", StringComparison.Ordinal),
                TimeSpan.FromSeconds(30),
                $"the supernode to report {peers} active sessions");
        }

        await Task.Delay(hold, cancellationToken);
        var stillIn = connections.Count(c => c.InSession);
        report.Fact($"sessions still open after holding {hold.TotalSeconds:0} s", $"{stillIn:N0} of {peers:N0}");
        if (node is not null)
        {
            var heldRss = node.ResidentBytes();
            report.Fact("supernode resident memory, idle / holding", $"{idleRss >> 20} MiB / {heldRss >> 20} MiB ({(heldRss - idleRss) / (double)peers / 1024:0.0} KiB per session)");
        }

        foreach (var connection in connections)
        {
            await connection.DisposeAsync();
        }

        identities.ForEach(i => i.Dispose());
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["peers"] = peers.ToString(CultureInfo.InvariantCulture),
            ["concurrency"] = concurrency.ToString(CultureInfo.InvariantCulture),
            ["hold_seconds"] = hold.TotalSeconds.ToString(CultureInfo.InvariantCulture),
        });
        return stillIn == peers ? 0 : 1;
    }
}
