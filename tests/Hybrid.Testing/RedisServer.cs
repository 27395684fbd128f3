using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Hybrid.Testing;

/// <summary>A real redis-server on a free loopback port: without persistence, or with the append-only file in a directory (as the chart runs it).</summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly string? _dataDir;
    private Process _process;

    private RedisServer(Process process, int port, string? dataDir)
    {
        _process = process;
        Port = port;
        _dataDir = dataDir;
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>Starts a server; with <paramref name="dataDir"/>, it keeps an append-only file there (fsync every second).</summary>
    public static async Task<RedisServer> StartAsync(string? dataDir = null)
    {
        var port = Ports.Free();
        var server = new RedisServer(Launch(port, dataDir), port, dataDir);
        await server.WaitAnsweringAsync();
        return server;
    }

    /// <summary>Starts the server again on the same port (and data directory) after <see cref="StopAsync"/>.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        _process.Dispose();
        _process = Launch(Port, _dataDir);
        await WaitAnsweringAsync();
    }

    private static Process Launch(int port, string? dataDir)
    {
        var start = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] persistence = dataDir is null
            ? ["--save", string.Empty, "--appendonly", "no"]
            : ["--save", string.Empty, "--appendonly", "yes", "--appendfsync", "everysec", "--dir", dataDir];
        foreach (var arg in (string[])["--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", .. persistence])
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("redis-server is not installed; run .ci/run (or apt-get install redis-server) first", ex);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private Task WaitAnsweringAsync() =>
        Eventually.TrueAsync(PingAsync, TimeSpan.FromSeconds(20), $"redis-server on port {Port} to answer PING");

    /// <summary>Kills the server (kill -9), as an outage would.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    private async Task<bool> PingAsync()
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", Port);
        var stream = client.GetStream();
        await stream.WriteAsync("PING\r\n"u8.ToArray());
        var buffer = new byte[16];
        var read = await stream.ReadAsync(buffer);
        return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
    }
}
