using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// The NAT matrix in a lab of network namespaces (root): for each combination of where two peers
/// sit (public, behind an endpoint-independent NAT, behind a symmetric NAT), fresh peers start,
/// one sends the other a chat, and the run waits until their link is direct or the hole punch
/// gives up. Reports the share of pairs ending direct, the time from the first chat to a direct
/// link, and punch attempts per success. Baseline: the first chat to a public peer (a plain dial).
/// </summary>
internal static class NatScenario
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(45);

    private enum Place
    {
        Public,
        Eim,
        Symmetric,
    }

    public static async Task<int> RunAsync(int runs, int seed, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("nat", "first chat to a public peer (plain dial, baseline)");
        var baseline = report.Series("first chat to a public peer (plain dial, baseline)");
        var random = new Random(seed);
        (Place A, Place B)[] combinations = [(Place.Eim, Place.Public), (Place.Symmetric, Place.Public), (Place.Eim, Place.Eim), (Place.Eim, Place.Symmetric), (Place.Symmetric, Place.Symmetric)];
        foreach (var (first, second) in combinations)
        {
            var name = $"{Describe(first)} and {Describe(second)}";
            var toDirect = report.Series($"first chat to a direct link, {name}");
            var (direct, attempts) = (0, 0);
            await using var lab = await NatLab.CreateAsync();
            using var temp = new TempDir();
            var supernodeHost = await lab.AddPublicAsync();
            var hostA = await AddAsync(lab, first);
            var hostB = await AddAsync(lab, second);
            await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, temp.Sub("sn"));
            for (var run = 0; run < runs; run++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // Which side speaks first is drawn: a punch must work whoever starts it.
                var (dialerHost, targetHost) = random.Next(2) == 0 ? (hostA, hostB) : (hostB, hostA);
                var dialer = await InitAsync(temp.Sub($"d{run}"), dialerHost);
                var target = await InitAsync(temp.Sub($"t{run}"), targetHost);
                await using var dialerDaemon = await DaemonProcess.StartAsync(dialer, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
                await using var targetDaemon = await DaemonProcess.StartAsync(target, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
                var targetId = (await DialedBackAsync(target)).GetProperty("peerId").GetString()!;
                await DialedBackAsync(dialer);

                var started = Stopwatch.GetTimestamp();
                var sent = await Json(dialer, "chat", "send", targetId, $"run {run}", "--json");
                var chatTime = Stopwatch.GetElapsedTime(started);
                var outcome = await OutcomeAsync(dialer, targetId);
                if (targetHost.Nat is null && sent.GetProperty("status").GetString() == "direct")
                {
                    Report.Record(baseline, chatTime);
                }

                if (outcome.Direct)
                {
                    direct++;
                    attempts += outcome.Attempts;
                    Report.Record(toDirect, Stopwatch.GetElapsedTime(started));
                }

                Console.WriteLine($"{name}, run {run + 1}: {(outcome.Direct ? $"direct after {Stopwatch.GetElapsedTime(started).TotalSeconds:0.00} s ({outcome.Why})" : $"relayed ({outcome.Why})")}");
            }

            report.Fact($"direct, {name}", $"{direct} of {runs} ({100.0 * direct / Math.Max(1, runs):0}%)");
            report.Fact($"punch attempts per direct link, {name}", direct == 0 ? "-" : (attempts / (double)direct).ToString("0.00", CultureInfo.InvariantCulture));
        }

        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["runs"] = runs.ToString(CultureInfo.InvariantCulture),
            ["seed"] = seed.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }

    private static string Describe(Place place) => place switch
    {
        Place.Public => "public",
        Place.Eim => "home (endpoint-independent NAT)",
        _ => "home (symmetric NAT)",
    };

    private static Task<LabHost> AddAsync(NatLab lab, Place place) => place switch
    {
        Place.Public => lab.AddPublicAsync(),
        Place.Eim => lab.AddHomeAsync(NatKind.EndpointIndependent),
        _ => lab.AddHomeAsync(NatKind.Symmetric),
    };

    private static async Task<CliRunner> InitAsync(string home, LabHost host)
    {
        var user = new CliRunner(home) { Namespace = host.Namespace };
        var result = await user.RunAsync("init", "--name", Path.GetFileName(home));
        return result.ExitCode == 0 ? user : throw new InvalidOperationException($"hybrid init failed: {result.Stderr}");
    }

    /// <summary>Waits until the link is direct, or the punch gave up; how many attempts it took (from the link's reason).</summary>
    private static async Task<(bool Direct, int Attempts, string Why)> OutcomeAsync(CliRunner dialer, string target)
    {
        var status = await Eventually.ReturnsAsync(
            () => Json(dialer, "status", "--json"),
            s => Link(s, target) is { } link && (link.GetProperty("path").GetString() == "direct" || s.GetProperty("events").EnumerateArray().Any(e => e.GetString()!.Contains("hole punch to", StringComparison.Ordinal))),
            Patience,
            "the link to be direct or the hole punch to give up");
        var link = Link(status, target)!.Value;
        var why = link.GetProperty("why").GetString()!;
        var direct = link.GetProperty("path").GetString() == "direct";
        var attempt = why.LastIndexOf("attempt ", StringComparison.Ordinal);
        var attempts = attempt >= 0 && int.TryParse(why[(attempt + 8)..].TrimEnd(')'), CultureInfo.InvariantCulture, out var n) ? n : direct ? 0 : HolePunchAttempts;
        return (direct, attempts, why);
    }

    private const int HolePunchAttempts = 3;

    private static JsonElement? Link(JsonElement status, string peer) =>
        status.GetProperty("links").EnumerateArray().Where(l => l.GetProperty("peerId").GetString() == peer).Select(l => (JsonElement?)l).FirstOrDefault();

    private static Task<JsonElement> DialedBackAsync(CliRunner user) =>
        Eventually.ReturnsAsync(
            () => Json(user, "status", "--json"),
            s => s.GetProperty("reachability").ValueKind == JsonValueKind.Object,
            Patience,
            $"the supernode's dial-back report for {user.Home}");

    private static async Task<JsonElement> Json(CliRunner user, params string[] args)
    {
        var result = await user.RunAsync(args);
        return result.ExitCode == 0
            ? JsonDocument.Parse(result.Stdout).RootElement.Clone()
            : throw new InvalidOperationException($"hybrid {string.Join(' ', args)} failed (exit {result.ExitCode}): {result.Stderr}");
    }
}
