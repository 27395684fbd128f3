using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Daemon;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Mailbox;

/// <summary>
/// Takes this peer's mail and checks on mail it left for others: at every session open, whenever a
/// supernode says mail is waiting, and every <see cref="PeerDaemonOptions.MailPollInterval"/>. It
/// never stops for a failure: the next round tries again.
/// </summary>
public sealed partial class MailLoop : BackgroundService
{
    private const int MaxPagesPerRound = 50;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly SupernodeConnection _connection;
    private readonly MailInbox _inbox;
    private readonly Courier _courier;
    private readonly TimeSpan _interval;
    private readonly ILogger<MailLoop> _logger;

    public MailLoop(SupernodeConnection connection, MailInbox inbox, Courier courier, PeerDaemonOptions options, ILogger<MailLoop> logger)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        (_connection, _inbox, _courier, _interval, _logger) = (connection, inbox, courier, options.MailPollInterval, logger);
        connection.Connected += (_, _) => Wake();
        connection.FailedOver += (_, _) => Wake();
        connection.MailWaiting += (_, _) => Wake();
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        base.Dispose();
        _wake.Dispose();
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(_interval, stoppingToken);
                if (!_connection.InSession)
                {
                    continue;
                }

                // While items come, more may be waiting: keep taking (a bounded number of pages) before sleeping again.
                for (var page = 0; page < MaxPagesPerRound && await _inbox.TakeAsync(stoppingToken) > 0; page++)
                {
                }

                await _courier.CheckDeliveriesAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is RpcException or IOException or InvalidOperationException or RefusedException or HttpRequestException)
            {
                LogMailFailed(_logger, ex.Message);
            }
        }
    }

    private void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (Exception ex) when (ex is SemaphoreFullException or ObjectDisposedException)
        {
            // Already awake, or stopping.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Mailbox check failed: {Reason}")]
    private static partial void LogMailFailed(ILogger logger, string reason);
}
