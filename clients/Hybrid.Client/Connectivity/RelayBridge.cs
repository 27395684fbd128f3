using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// Answers relay offers: each relayed link is fed into the peer host's own socket, so TLS runs end
/// to end through the relay and the supernode pipes ciphertext only.
/// </summary>
public sealed partial class RelayBridge(SupernodeConnection connection, Func<IPEndPoint> target, ILogger<RelayBridge> logger) : IHostedService, IDisposable
{
    /// <summary>Relayed links being bridged at once, at most; further offers wait for the dialer to retry.</summary>
    public const int MaxBridges = 256;

    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _running = [];
    private int _bridges;

    /// <summary>Relayed links bridged now.</summary>
    public int Active => Volatile.Read(ref _bridges);

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        connection.RelayOffered += OnOffered;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        connection.RelayOffered -= OnOffered;
        await _stopping.CancelAsync();
        Task[] running;
        lock (_running)
        {
            running = [.. _running];
        }

        await Task.WhenAll(running).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <inheritdoc />
    public void Dispose() => _stopping.Dispose();

    private void OnOffered(object? sender, string linkId)
    {
        if (_stopping.IsCancellationRequested || Interlocked.Increment(ref _bridges) > MaxBridges)
        {
            Interlocked.Decrement(ref _bridges);
            LogTooMany(logger, linkId);
            return;
        }

        var task = BridgeAsync(linkId);
        lock (_running)
        {
            _running.RemoveAll(t => t.IsCompleted);
            _running.Add(task);
        }
    }

    private async Task BridgeAsync(string linkId)
    {
        try
        {
            using var ended = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            using var call = connection.RelayCall(ended.Token);
            await call.RequestStream.WriteAsync(new RelayFrame { Accept = linkId }, ended.Token);
            var to = target();
            using var socket = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(to, ended.Token);
            await using var local = new NetworkStream(socket, ownsSocket: false);
            var up = Task.Run(
                async () =>
                {
                    var buffer = new byte[RelayStream.MaxFrameBytes];
                    int read;
                    while ((read = await local.ReadAsync(buffer, ended.Token)) > 0)
                    {
                        await call.RequestStream.WriteAsync(new RelayFrame { Data = ByteString.CopyFrom(buffer, 0, read) }, ended.Token);
                    }
                },
                ended.Token);
            var down = Task.Run(
                async () =>
                {
                    await foreach (var frame in call.ResponseStream.ReadAllAsync(ended.Token))
                    {
                        if (frame.KindCase == RelayFrame.KindOneofCase.Data)
                        {
                            await local.WriteAsync(frame.Data.Memory, ended.Token);
                        }
                    }
                },
                ended.Token);
            await Task.WhenAny(up, down);
            await ended.CancelAsync();
            await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        catch (Exception ex) when (ex is RpcException or IOException or SocketException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
        {
            LogBridgeEnded(logger, linkId, ex.Message);
        }
        finally
        {
            Interlocked.Decrement(ref _bridges);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relayed link {LinkId} ended: {Reason}")]
    private static partial void LogBridgeEnded(ILogger logger, string linkId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Relay offer {LinkId} declined: as many relayed links are open as this peer bridges")]
    private static partial void LogTooMany(ILogger logger, string linkId);
}
