using Hybrid.Supernode.Configuration;

namespace Hybrid.Supernode.Cluster;

/// <summary>
/// A supernode frozen for longer than the cluster's failure detection (SIGSTOP, a suspended VM, a
/// stalled host) has been declared dead, and its grains live on elsewhere; its own copies are stale.
/// When it runs again it must not answer from them: this watches for such a gap in its own clock
/// ticks, and on one stops answering (every call gets <c>Unavailable</c>, so clients move on) and
/// stops the process with exit code 75, for its supervisor to start it afresh.
/// </summary>
public sealed partial class PauseFence(SupernodeOptions options, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<PauseFence> logger) : BackgroundService
{
    /// <summary>The exit code of a supernode that fenced itself (EX_TEMPFAIL: start it again).</summary>
    public const int ExitCode = 75;

    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);
    private volatile bool _fenced;

    /// <summary>Whether this supernode found itself frozen past failure detection and stopped answering.</summary>
    public bool Fenced => _fenced;

    /// <summary>A gap between ticks longer than this means the process was frozen long enough to be declared dead.</summary>
    public TimeSpan Threshold => Max(TimeSpan.FromSeconds(3), options.FailureDetection);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.IsCluster)
        {
            // Alone on its own store, a frozen supernode has no twin anywhere: nothing to fence.
            return;
        }

        using var timer = new PeriodicTimer(Tick, time);
        var last = time.GetTimestamp();
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var gap = time.GetElapsedTime(last);
            last = time.GetTimestamp();
            if (gap > Threshold)
            {
                _fenced = true;
                LogFenced(logger, gap.TotalSeconds, Threshold.TotalSeconds);
                Environment.ExitCode = ExitCode;
                lifetime.StopApplication();
                return;
            }
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    [LoggerMessage(Level = LogLevel.Critical, Message = "This supernode was frozen for {Seconds:0.0} s, longer than failure detection ({Threshold:0.0} s): the cluster has declared it dead and moved its grains. It stops answering and exits for a fresh start")]
    private static partial void LogFenced(ILogger logger, double seconds, double threshold);
}
