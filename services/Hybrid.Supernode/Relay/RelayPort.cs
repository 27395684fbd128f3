using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Hybrid.Protocol.Network;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Hosting;

namespace Hybrid.Supernode.Relay;

/// <summary>The two sockets of a relayed link, once both peers presented their tokens.</summary>
public sealed record SplicedSockets(Socket Dialer, Socket Target);

/// <summary>A relayed link's socket offer: the port to connect to and each side's one-time token.</summary>
public sealed class SpliceSlot : IDisposable
{
    internal SpliceSlot(int port, byte[] dialerToken, byte[] targetToken)
    {
        Port = port;
        DialerToken = dialerToken;
        TargetToken = targetToken;
    }

    public int Port { get; }

    public byte[] DialerToken { get; }

    public byte[] TargetToken { get; }

    internal Socket? Dialer { get; set; }

    internal Socket? Target { get; set; }

    internal TaskCompletionSource<SplicedSockets> Both { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal Lock Gate { get; } = new();

    /// <summary>Set when the link took both sockets (they are then the splice's to close).</summary>
    internal bool Taken { get; set; }

    /// <summary>Closes whatever socket arrived if the link did not take them.</summary>
    public void Dispose()
    {
        Both.TrySetCanceled();
        lock (Gate)
        {
            if (!Taken)
            {
                Dialer?.Dispose();
                Target?.Dispose();
            }
        }
    }
}

/// <summary>
/// The relay's byte port: a plain TCP listener where the two peers of a relayed link, paired over
/// their Relay calls, each present a one-time token and then have their sockets spliced. Relayed
/// bytes then cost a receive and a send per up to 64 KiB, instead of HTTP/2 and gRPC framing on both
/// hops; the bytes are the peers' TLS records either way, so the port needs no TLS of its own. The
/// Relay calls stay open as the link's control (its limits, its end). A peer that cannot reach the
/// port gets the link in frames over its call, as before.
/// </summary>
public sealed partial class RelayPort : IHostedService, IDisposable
{
    /// <summary>Connections that have not presented a token yet, at most; more are closed at once.</summary>
    public const int MaxUnidentified = 256;

    private readonly ConcurrentDictionary<string, (SpliceSlot Slot, bool IsDialer)> _tokens = new(StringComparer.Ordinal);
    private readonly SupernodeOptions options;
    private readonly IConfiguration configuration;
    private readonly ILogger<RelayPort> logger;
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task _accepting = Task.CompletedTask;
    private int _unidentified;

    public RelayPort(SupernodeOptions options, IConfiguration configuration, ILogger<RelayPort> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.configuration = configuration;
        this.logger = logger;
    }

    /// <summary>The port peers are told to connect to; 0 while the port is off.</summary>
    public int AdvertisedPort { get; private set; }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.RelayPort < 0)
        {
            return Task.CompletedTask;
        }

        var address = BindAddress(Listeners.ConfiguredGrpcUrl(configuration));
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (address.Equals(IPAddress.IPv6Any))
        {
            listener.DualMode = true;
        }

        listener.Bind(new IPEndPoint(address, options.RelayPort));
        listener.Listen(512);
        _listener = listener;
        AdvertisedPort = options.RelayAdvertisedPort > 0 ? options.RelayAdvertisedPort : ((IPEndPoint)listener.LocalEndPoint!).Port;
        LogListening(logger, listener.LocalEndPoint);
        _accepting = AcceptAsync(listener);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        _listener?.Dispose();
        await _accepting.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _listener?.Dispose();
        _stopping.Dispose();
    }

    /// <summary>A socket offer for a link; null when the port is off. Dispose it when the link ends.</summary>
    public SpliceSlot? Offer()
    {
        if (_listener is null)
        {
            return null;
        }

        var slot = new SpliceSlot(AdvertisedPort, RandomNumberGenerator.GetBytes(RelaySplice.TokenBytes), RandomNumberGenerator.GetBytes(RelaySplice.TokenBytes));
        _tokens[Convert.ToHexString(slot.DialerToken)] = (slot, true);
        _tokens[Convert.ToHexString(slot.TargetToken)] = (slot, false);
        return slot;
    }

    /// <summary>Both sockets of <paramref name="slot"/>, or null when either peer did not present its token in time.</summary>
    public async Task<SplicedSockets?> AwaitAsync(SpliceSlot slot, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(slot);
        try
        {
            await ((Task)slot.Both.Task.WaitAsync(options.RelaySpliceWait, cancellationToken)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            lock (slot.Gate)
            {
                // Decided under the slot's lock: a socket filed at the deadline is either taken or closed.
                if (slot.Both.Task.IsCompletedSuccessfully && !cancellationToken.IsCancellationRequested)
                {
                    slot.Taken = true;
                    return slot.Both.Task.Result;
                }

                return null;
            }
        }
        finally
        {
            _tokens.TryRemove(Convert.ToHexString(slot.DialerToken), out _);
            _tokens.TryRemove(Convert.ToHexString(slot.TargetToken), out _);
        }
    }

    /// <summary>The address the port binds: the gRPC endpoint's own when it names one, else every address.</summary>
    internal static IPAddress BindAddress(string? grpcUrl)
    {
        if (grpcUrl is null || !Uri.TryCreate(grpcUrl.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri))
        {
            return IPAddress.IPv6Any;
        }

        if (uri.IsLoopback && !IPAddress.TryParse(uri.Host.Trim('[', ']'), out _))
        {
            return IPAddress.Loopback;
        }

        return IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && !ip.Equals(IPAddress.Any) && !ip.Equals(IPAddress.IPv6Any) ? ip : IPAddress.IPv6Any;
    }

    private async Task AcceptAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // A connection reset before it was accepted: nothing to do for it.
                continue;
            }

            if (Interlocked.Increment(ref _unidentified) > MaxUnidentified)
            {
                Interlocked.Decrement(ref _unidentified);
                socket.Dispose();
                continue;
            }

            _ = IdentifyAsync(socket);
        }
    }

    /// <summary>Reads the version byte and the token within the hello timeout, and files the socket under its link.</summary>
    private async Task IdentifyAsync(Socket socket)
    {
        var filed = false;
        try
        {
            socket.NoDelay = true;
            var hello = new byte[1 + RelaySplice.TokenBytes];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(options.RelaySpliceWait);
            var read = 0;
            while (read < hello.Length)
            {
                var n = await socket.ReceiveAsync(hello.AsMemory(read), SocketFlags.None, timeout.Token);
                if (n == 0)
                {
                    return;
                }

                read += n;
            }

            if (hello[0] != RelaySplice.Version || !_tokens.TryRemove(Convert.ToHexString(hello.AsSpan(1)), out var entry))
            {
                return;
            }

            var slot = entry.Slot;
            lock (slot.Gate)
            {
                if (slot.Both.Task.IsCompleted)
                {
                    return;
                }

                if (entry.IsDialer)
                {
                    slot.Dialer = socket;
                }
                else
                {
                    slot.Target = socket;
                }

                filed = true;
                if (slot is { Dialer: { } dialer, Target: { } target })
                {
                    slot.Both.TrySetResult(new SplicedSockets(dialer, target));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Too slow, reset or shutting down: the socket is closed below.
        }
        finally
        {
            Interlocked.Decrement(ref _unidentified);
            if (!filed)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>
    /// Moves bytes between the two sockets until either side closes, the link is cancelled or a limit
    /// is hit; <paramref name="charge"/> is called with each chunk's sender and size before it is sent
    /// and throws to cut the link. The supernode holds no buffer while a link is idle.
    /// </summary>
    public static async Task SpliceAsync(SplicedSockets sockets, Func<bool, int, CancellationToken, ValueTask> charge, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sockets);
        ArgumentNullException.ThrowIfNull(charge);
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            ReadOnlyMemory<byte> go = new[] { RelaySplice.Spliced };
            await SendAsync(sockets.Dialer, go, ended.Token);
            await SendAsync(sockets.Target, go, ended.Token);
            var up = PumpAsync(sockets.Dialer, sockets.Target, fromDialer: true, charge, ended.Token);
            var down = PumpAsync(sockets.Target, sockets.Dialer, fromDialer: false, charge, ended.Token);
            var first = await Task.WhenAny(up, down);
            await ended.CancelAsync();
            await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await first;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // One side left or the link was cancelled: the link is over.
        }
        finally
        {
            sockets.Dialer.Dispose();
            sockets.Target.Dispose();
        }
    }

    private static async Task PumpAsync(Socket from, Socket to, bool fromDialer, Func<bool, int, CancellationToken, ValueTask> charge, CancellationToken ended)
    {
        const int Chunk = 64 * 1024;
        while (true)
        {
            // Wait for data without a buffer, then borrow one only for as long as the chunk takes.
            await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, ended);
            var buffer = ArrayPool<byte>.Shared.Rent(Chunk);
            try
            {
                var n = await from.ReceiveAsync(buffer.AsMemory(0, Chunk), SocketFlags.None, ended);
                if (n == 0)
                {
                    return;
                }

                await charge(fromDialer, n, ended);
                await SendAsync(to, buffer.AsMemory(0, n), ended);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private static async ValueTask SendAsync(Socket to, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        while (!bytes.IsEmpty)
        {
            var sent = await to.SendAsync(bytes, SocketFlags.None, cancellationToken);
            bytes = bytes[sent..];
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Relay byte port listening on {Endpoint}")]
    private static partial void LogListening(ILogger logger, EndPoint? endpoint);
}
