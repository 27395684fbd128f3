using Grpc.Core;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// Answers relay offers: each relayed link is handed to the peer host as a connection of its own
/// (<see cref="InProcessListener"/>), so TLS runs end to end through the relay and the supernode
/// pipes ciphertext only.
/// </summary>
public sealed partial class RelayBridge(SupernodeConnection connection, InProcessListener host, ILogger<RelayBridge> logger) : IHostedService, IDisposable
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
            var call = connection.RelayCall(out var supernodeUrl, ended.Token);
            Stream link;
            try
            {
                await call.RequestStream.WriteAsync(new RelayFrame { Accept = linkId }, ended.Token);
                link = await RelayLinks.AwaitAsync(call, supernodeUrl, ended.Token);
            }
            catch
            {
                call.Dispose();
                throw;
            }

            await using var owned = link;
            await host.ServeAsync(owned, remote: null, ended.Token);
        }
        catch (Exception ex) when (ex is RpcException or IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
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
