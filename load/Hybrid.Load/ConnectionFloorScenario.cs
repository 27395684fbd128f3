using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using Hybrid.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Hybrid.Load;

/// <summary>
/// What a held connection costs Kestrel itself, before any application state: a bare Kestrel server
/// in a process of its own holds connections of two kinds, each after one exchange, and reports its
/// live heap. HTTP/2 (what gRPC, and so every supernode session, runs on) against a WebSocket over
/// HTTP/1.1. A session on its own connection can cost no less than its connection's floor.
/// </summary>
internal static class ConnectionFloorScenario
{
    private enum Kind
    {
        Http2,
        WebSocket,
    }

    public static async Task<int> RunAsync(int connections, int concurrency, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("connection-floor", OpenSeries(Kind.Http2));
        using var server = FloorServer.Start();
        await server.ReadyAsync(cancellationToken);
        // A smaller round of each kind first, not reported: the server's and the runner's code paths compiled.
        foreach (var (kind, count, measured) in new[] { (Kind.Http2, Math.Max(100, connections / 4), false), (Kind.WebSocket, Math.Max(100, connections / 4), false), (Kind.Http2, connections, true), (Kind.WebSocket, connections, true) })
        {
            await server.WaitForNoConnectionsAsync(cancellationToken);
            var before = await server.HeapAsync(cancellationToken);
            var serverCpu = server.CpuTime();
            var runnerCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            var held = await OpenAsync(kind, server, count, concurrency, measured ? report.Series(OpenSeries(kind)) : null, cancellationToken);
            var rate = count / clock.Elapsed.TotalSeconds;
            serverCpu = server.CpuTime() - serverCpu;
            runnerCpu = Process.GetCurrentProcess().TotalProcessorTime - runnerCpu;
            try
            {
                var holding = await server.HeapAsync(cancellationToken);
                if (measured)
                {
                    var name = kind == Kind.Http2 ? "HTTP/2, one request each" : "WebSocket over HTTP/1.1, one message each";
                    report.Fact($"{name}: live heap per held connection", $"{(holding - before) / (double)count / 1024:0.0} KiB ({count:N0} held)");
                    report.Fact($"{name}: opened", $"{rate:N0} /s ({concurrency} at a time); CPU for each: server {serverCpu.TotalMilliseconds / count:0.00} ms, load runner {runnerCpu.TotalMilliseconds / count:0.00} ms");
                }
            }
            finally
            {
                foreach (var connection in held)
                {
                    connection.Dispose();
                }
            }
        }

        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["connections"] = connections.ToString(CultureInfo.InvariantCulture),
            ["concurrency"] = concurrency.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }

    private static string OpenSeries(Kind kind) => kind == Kind.Http2 ? "open an HTTP/2 connection, one request" : "open a WebSocket, one message";

    /// <summary>Opens <paramref name="count"/> connections of <paramref name="kind"/>, each after one exchange, and holds them.</summary>
    private static async Task<List<IDisposable>> OpenAsync(Kind kind, FloorServer server, int count, int concurrency, HdrHistogram.LongHistogram? latencies, CancellationToken cancellationToken)
    {
        var held = new List<IDisposable>(count);
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken }, async (_, ct) =>
        {
            var started = Stopwatch.GetTimestamp();
            IDisposable connection;
            if (kind == Kind.Http2)
            {
                var client = new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan })
                {
                    DefaultRequestVersion = HttpVersion.Version20,
                    DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
                };
                using var answer = await client.PostAsync(new Uri(server.Http2Url, "/noop"), new ByteArrayContent([0, 0, 0, 0, 0]), ct);
                answer.EnsureSuccessStatusCode();
                connection = client;
            }
            else
            {
                var socket = new ClientWebSocket();
                await socket.ConnectAsync(new Uri(server.WebSocketUrl, "/ws"), ct);
                await socket.SendAsync(new byte[] { 0, 0, 0, 0, 0 }, WebSocketMessageType.Binary, endOfMessage: true, ct);
                connection = socket;
            }

            if (latencies is not null)
            {
                Report.Record(latencies, Stopwatch.GetElapsedTime(started));
            }

            lock (held)
            {
                held.Add(connection);
            }
        });
        return held;
    }

    /// <summary>
    /// The server's side, run as <c>connection-floor-server</c>: prints its two URLs, then answers
    /// <c>heap</c> (live heap after a full blocking collection) and <c>open</c> (connections open) on
    /// standard input, one line each.
    /// </summary>
    public static async Task<int> ServeAsync(CancellationToken cancellationToken)
    {
        var open = 0;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => Count(listen, HttpProtocols.Http2));
            kestrel.Listen(IPAddress.Loopback, 0, listen => Count(listen, HttpProtocols.Http1));
        });

        void Count(ListenOptions listen, HttpProtocols protocols)
        {
            listen.Protocols = protocols;
            listen.Use(next => async connection =>
            {
                Interlocked.Increment(ref open);
                try
                {
                    await next(connection);
                }
                finally
                {
                    Interlocked.Decrement(ref open);
                }
            });
        }

        await using var app = builder.Build();
        app.UseWebSockets();
        app.MapPost("/noop", () => Results.Ok());
        app.Map("/ws", async context =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            // Waits for data without holding a buffer (a zero-byte read), as a server holding many idle sockets would.
            while (socket.State == WebSocketState.Open)
            {
                var received = await socket.ReceiveAsync(Memory<byte>.Empty, context.RequestAborted);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                var scratch = new byte[256];
                while (!(await socket.ReceiveAsync(scratch.AsMemory(), context.RequestAborted)).EndOfMessage)
                {
                }
            }
        });
        await app.StartAsync(cancellationToken);
        foreach (var address in app.Urls)
        {
            Console.WriteLine($"url {address}");
        }

        Console.WriteLine("ready");
        while (await Console.In.ReadLineAsync(cancellationToken) is { } command)
        {
            if (command == "heap")
            {
                for (var i = 0; i < 3; i++)
                {
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    GC.WaitForPendingFinalizers();
                }

                Console.WriteLine(GC.GetTotalMemory(forceFullCollection: true).ToString(CultureInfo.InvariantCulture));
            }
            else if (command == "open")
            {
                Console.WriteLine(Volatile.Read(ref open).ToString(CultureInfo.InvariantCulture));
            }
        }

        await app.StopAsync(CancellationToken.None);
        return 0;
    }

    /// <summary>The bare server's process, driven over its standard input.</summary>
    private sealed class FloorServer : IDisposable
    {
        private readonly Process _process;
        private readonly Lock _gate = new();

        private FloorServer(Process process) => _process = process;

        public Uri Http2Url { get; private set; } = null!;

        public Uri WebSocketUrl { get; private set; } = null!;

        /// <summary>Starts the server with the collector a supernode runs (workstation), whatever the runner's environment sets.</summary>
        public static FloorServer Start() =>
            new(RunnerProcess.Start(["connection-floor-server"], environment => environment.Remove("DOTNET_gcServer")));

        public async Task ReadyAsync(CancellationToken cancellationToken)
        {
            var urls = new List<Uri>();
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(30));
            while (await _process.StandardOutput.ReadLineAsync(deadline.Token) is { } line && line != "ready")
            {
                if (line.StartsWith("url ", StringComparison.Ordinal))
                {
                    urls.Add(new Uri(line[4..]));
                }
            }

            if (urls.Count != 2)
            {
                throw new InvalidOperationException($"the bare server listed {urls.Count} URLs before it was ready (expected 2), or exited");
            }

            // Listeners are reported in the order they were added: HTTP/2 first.
            (Http2Url, WebSocketUrl) = (urls[0], new UriBuilder(urls[1]) { Scheme = "ws" }.Uri);
        }

        public async Task<long> HeapAsync(CancellationToken cancellationToken) => long.Parse(await AskAsync("heap", cancellationToken), CultureInfo.InvariantCulture);

        /// <summary>Polls until the server holds no connection (those of the last series closed), for at most 30 s.</summary>
        public Task<string> WaitForNoConnectionsAsync(CancellationToken cancellationToken) =>
            Eventually.ReturnsAsync(() => AskAsync("open", cancellationToken), open => open == "0", TimeSpan.FromSeconds(30), "the bare server to see the last series' connections closed");

        public TimeSpan CpuTime()
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }

        private async Task<string> AskAsync(string command, CancellationToken cancellationToken)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(TimeSpan.FromSeconds(60));
            lock (_gate)
            {
                _process.StandardInput.WriteLine(command);
                _process.StandardInput.Flush();
            }

            return await _process.StandardOutput.ReadLineAsync(deadline.Token)
                ?? throw new InvalidOperationException($"the bare server exited (code {(_process.HasExited ? _process.ExitCode : -1)}) before answering '{command}'");
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.Close();
                if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
                {
                    _process.Kill(entireProcessTree: true);
                }
            }

            _process.Dispose();
        }
    }
}
