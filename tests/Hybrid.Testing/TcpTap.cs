using System.Net;
using System.Net.Sockets;

namespace Hybrid.Testing;

/// <summary>
/// A loopback TCP forwarder that keeps a copy of every byte it carries, both ways: put it in front
/// of a supernode to see exactly what the supernode (and anyone on that wire) received and sent.
/// </summary>
public sealed class TcpTap : IAsyncDisposable
{
    private const long MaxCaptured = 512L * 1024 * 1024;
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<MemoryStream> _streams = [];
    private long _capturedBytes;
    private readonly Lock _gate = new();
    private readonly Task _accepting;

    /// <summary>Listens on <paramref name="port"/> (0: any free port) and forwards to <paramref name="targetPort"/>.</summary>
    public TcpTap(int port, int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    /// <summary>The port clients connect to.</summary>
    public int Port { get; }

    /// <summary>Bytes captured so far (both directions).</summary>
    public long CapturedBytes
    {
        get
        {
            lock (_gate)
            {
                return _capturedBytes;
            }
        }
    }

    /// <summary>Whether <paramref name="needle"/> appears anywhere in what passed through, in either direction of any connection.</summary>
    public bool Saw(ReadOnlySpan<byte> needle)
    {
        lock (_gate)
        {
            foreach (var stream in _streams)
            {
                if (stream.GetBuffer().AsSpan(0, (int)stream.Length).IndexOf(needle) >= 0)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            _ = Task.Run(() => ForwardAsync(client));
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, _targetPort, _stopping.Token);
                client.NoDelay = upstream.NoDelay = true;
                var a = PumpAsync(client.GetStream(), upstream.GetStream());
                var b = PumpAsync(upstream.GetStream(), client.GetStream());
                await Task.WhenAny(a, b);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                // One side went away.
            }
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[64 * 1024];
        var captured = new MemoryStream();
        lock (_gate)
        {
            _streams.Add(captured);
        }

        int read;
        while ((read = await from.ReadAsync(buffer, _stopping.Token)) > 0)
        {
            lock (_gate)
            {
                if (_capturedBytes + read <= MaxCaptured)
                {
                    captured.Write(buffer, 0, read);
                    _capturedBytes += read;
                }
            }

            await to.WriteAsync(buffer.AsMemory(0, read), _stopping.Token);
        }
    }
}
