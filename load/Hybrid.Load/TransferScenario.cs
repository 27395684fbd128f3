using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Daemon;
using Hybrid.Protocol.Control;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Goods data between two real daemon processes on one embedded supernode: MB/s direct (mutual TLS
/// on loopback) and relayed (the seller in private mode, so every byte goes through the supernode),
/// beside a raw loopback TCP copy of the same size in the same run. Also chat round trips through the
/// control API, direct and relayed. Baseline for the latency table: the raw TCP copy of one chunk.
/// </summary>
internal static class TransferScenario
{
    private const int ChunkSize = 256 * 1024;

    public static async Task<int> RunAsync(int sizeMb, int runs, int chats, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("transfer", "raw TCP copy of one 256 KiB chunk");
        using var temp = new TempDir();
        var size = (long)sizeMb * 1024 * 1024;
        var goods = temp.Sub("goods.bin");
        WriteRandom(goods, size);

        var raw = await RawTcpAsync(size, report.Series("raw TCP copy of one 256 KiB chunk"), cancellationToken);
        report.Fact("raw loopback TCP copy", $"{raw:N0} MB/s");

        await using var node = await SupernodeProcess.StartAsync(temp.Sub("sn"), "--Supernode:RequestsPerSecond=100000", "--Supernode:RequestBurst=100000",
            // The relay is measured at full speed here, not at a public supernode's per-peer rate.
            "--Supernode:RelayBytesPerPeerPerSecond=100000000000");
        var buyer = await InitAsync(temp.Sub("buyer"), "buyer");
        var direct = await InitAsync(temp.Sub("seller-direct"), "open seller");
        var hidden = await InitAsync(temp.Sub("seller-private"), "private seller");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", node.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var directDaemon = await DaemonProcess.StartAsync(direct, "--supernode", node.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var hiddenDaemon = await DaemonProcess.StartAsync(hidden, "--supernode", node.GrpcUrl, "--private");

        int[] pids = [buyerDaemon.ProcessId, directDaemon.ProcessId, hiddenDaemon.ProcessId, node.ProcessId];
        var before = pids.Select(CpuSeconds).ToArray();
        var directRate = await FetchRatesAsync(buyer, direct, goods, runs, "direct", report, cancellationToken);
        var middle = pids.Select(CpuSeconds).ToArray();
        var relayedRate = await FetchRatesAsync(buyer, hidden, goods, runs, "relayed", report, cancellationToken);
        var after = pids.Select(CpuSeconds).ToArray();
        var gigabytes = size * (runs + 1) / 1e9;
        report.Fact("CPU s per GB fetched, direct (buyer, seller, supernode)", $"{(middle[0] - before[0]) / gigabytes:0.00}, {(middle[1] - before[1]) / gigabytes:0.00}, {(middle[3] - before[3]) / gigabytes:0.00}");
        report.Fact("CPU s per GB fetched, relayed (buyer, seller, supernode)", $"{(after[0] - middle[0]) / gigabytes:0.00}, {(after[2] - middle[2]) / gigabytes:0.00}, {(after[3] - middle[3]) / gigabytes:0.00}");
        var (frames, bytes) = await RelayCountersAsync(node);
        report.Fact("relayed data frames (mean size)", $"{frames:N0} ({(frames == 0 ? 0 : bytes / frames / 1024):N0} KiB)");
        report.Fact("direct / raw TCP", $"{directRate / raw:0.00} (goal >= 0.5)");
        report.Fact("relayed / direct", $"{relayedRate / directRate:0.00} (goal >= 0.7)");

        await ChatRoundTripsAsync(buyer, direct, chats, report.Series("chat message, direct (control API -> signed -> peer stores -> ack)"), cancellationToken);
        await ChatRoundTripsAsync(buyer, hidden, chats, report.Series("chat message, relayed"), cancellationToken);

        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["size_mb"] = sizeMb.ToString(CultureInfo.InvariantCulture),
            ["runs"] = runs.ToString(CultureInfo.InvariantCulture),
            ["chats"] = chats.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }

    private static async Task<double> FetchRatesAsync(CliRunner buyer, CliRunner seller, string goods, int runs, string expectedPath, Report report, CancellationToken cancellationToken)
    {
        var listing = await Json(seller, "listing", "publish", "--title", $"Benchmark goods {expectedPath}", "--price", "1", "--currency", "EUR", "--file", goods, "--json");
        var order = await Json(buyer, "order", "create", listing.GetProperty("listingId").GetString()!, "--json");
        var orderId = order.GetProperty("orderId").GetString()!;
        await Json(seller, "order", "accept", orderId, "--json");
        using var channel = ControlChannel.Open(buyer.Home);
        var control = ControlChannel.Client(channel);
        var rates = new List<double>();
        // One unmeasured fetch first: the link, the JIT's hot paths and the page cache warm up, as for chat.
        for (var run = -1; run < runs; run++)
        {
            var target = Path.Combine(buyer.Home, $"fetched-{expectedPath}.bin");
            var clock = Stopwatch.StartNew();
            FetchProgress? last = null;
            using var call = control.Fetch(new FetchRequest { OrderId = orderId, OutPath = target }, cancellationToken: cancellationToken);
            await foreach (var progress in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                last = progress;
            }

            var seconds = clock.Elapsed.TotalSeconds;
            if (last is not { Done: true } || last.Path != expectedPath)
            {
                throw new InvalidOperationException($"fetch ended {last?.Path ?? "without progress"}, expected a finished {expectedPath} transfer");
            }

            if (run >= 0)
            {
                rates.Add(last.TotalBytes / 1e6 / seconds);
            }

            File.Delete(target);
        }

        rates.Sort();
        var median = rates[rates.Count / 2];
        report.Fact($"fetch {expectedPath} (median of {runs})", $"{median:N0} MB/s (runs: {string.Join(", ", rates.Select(r => r.ToString("N0", CultureInfo.InvariantCulture)))})");
        return median;
    }

    /// <summary>User and system CPU time a process has used so far (Linux /proc; clock ticks of 1/100 s).</summary>
    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>The supernode's relay counters: data frames and bytes piped so far.</summary>
    private static async Task<(double Frames, double Bytes)> RelayCountersAsync(SupernodeProcess node)
    {
        using var http = new HttpClient();
        var lines = (await http.GetStringAsync(new Uri($"{node.OpsUrl}/metrics"))).Split('\n');
        double Read(string name) => lines.Where(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Select(l => double.Parse(l[(name.Length + 1)..], CultureInfo.InvariantCulture)).FirstOrDefault();
        return (Read("hybrid_relay_frames_total"), Read("hybrid_relay_bytes_total"));
    }

    private static async Task ChatRoundTripsAsync(CliRunner from, CliRunner to, int count, HdrHistogram.LongHistogram series, CancellationToken cancellationToken)
    {
        var peer = (await from.RunAsync("peer", "lookup", (await to.RunAsync("id")).Stdout.Trim(), "--json")).Stdout;
        var peerId = JsonDocument.Parse(peer).RootElement.GetProperty("peerId").GetString()!;
        using var channel = ControlChannel.Open(from.Home);
        var control = ControlChannel.Client(channel);
        for (var i = 0; i < count + 20; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await control.SendChatAsync(new SendChatRequest { PeerId = peerId, Text = $"message {i}" }, cancellationToken: cancellationToken);
            if (i >= 20)
            {
                Report.Record(series, Stopwatch.GetElapsedTime(started));
            }
        }
    }

    /// <summary>The same number of bytes over one loopback TCP connection, in chunks of the transfer's size.</summary>
    private static async Task<double> RawTcpAsync(long size, HdrHistogram.LongHistogram perChunk, CancellationToken cancellationToken)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var receive = Task.Run(
            async () =>
            {
                using var server = await listener.AcceptTcpClientAsync(cancellationToken);
                var stream = server.GetStream();
                var buffer = new byte[ChunkSize];
                long total = 0;
                int read;
                while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    total += read;
                }

                return total;
            },
            cancellationToken);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, cancellationToken);
        var chunk = new byte[ChunkSize];
        Random.Shared.NextBytes(chunk);
        var clock = Stopwatch.StartNew();
        var output = client.GetStream();
        for (long sent = 0; sent < size; sent += ChunkSize)
        {
            var started = Stopwatch.GetTimestamp();
            await output.WriteAsync(chunk, cancellationToken);
            Report.Record(perChunk, Stopwatch.GetElapsedTime(started));
        }

        client.Client.Shutdown(SocketShutdown.Send);
        var received = await receive;
        return received / 1e6 / clock.Elapsed.TotalSeconds;
    }

    private static async Task<CliRunner> InitAsync(string home, string name)
    {
        var user = new CliRunner(home);
        var init = await user.RunAsync("init", "--name", name);
        if (init.ExitCode != 0)
        {
            throw new InvalidOperationException(init.Stderr);
        }

        // The chat series sends hundreds of messages a minute to one contact: measure the path, not
        // the per-contact call budget (240 a minute), which would refuse them by design.
        var peerHome = new Hybrid.Client.Home.PeerHome(home);
        var settings = peerHome.LoadSettings();
        settings.Budgets = new PeerBudgetOptions { ContactCallsPerMinute = 100_000 };
        peerHome.SaveSettings(settings);
        return user;
    }

    private static async Task<JsonElement> Json(CliRunner user, params string[] args)
    {
        var result = await user.RunAsync(args);
        return result.ExitCode == 0 ? JsonDocument.Parse(result.Stdout).RootElement.Clone() : throw new InvalidOperationException($"hybrid {string.Join(' ', args)}: {result.Stderr}");
    }

    private static void WriteRandom(string path, long size)
    {
        var buffer = new byte[1 << 20];
        using var file = File.Create(path);
        for (long written = 0; written < size; written += buffer.Length)
        {
            Random.Shared.NextBytes(buffer);
            file.Write(buffer, 0, (int)Math.Min(buffer.Length, size - written));
        }
    }
}
