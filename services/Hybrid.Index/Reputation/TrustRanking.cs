using Hybrid.Index.Search;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Hybrid.Index.Reputation;

/// <summary>
/// The search ranking's view of global trust on this supernode: a snapshot of every seller's trust
/// score, refreshed from the trust grain in the background, so a shard never waits on it. A seller
/// nobody vouches for weighs 1; the most trusted weighs 1 + <see cref="MaxBoost"/>.
/// </summary>
public sealed partial class TrustRanking(IGrainFactory grains, IOptions<TrustOptions> options, ILogger<TrustRanking> logger) : BackgroundService, IRankingSignal
{
    /// <summary>How much the most trusted seller's relevance is raised.</summary>
    public const double MaxBoost = 0.5;

    private volatile TrustScores? _scores;

    public double SellerWeight(string seller) => 1 + (MaxBoost * TrustScore(seller) / 100.0);

    public int TrustScore(string seller) => _scores is { } s && s.Scores.TryGetValue(seller, out var score) ? score : 0;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromTicks(Math.Clamp(options.Value.RecomputeInterval.Ticks / 2, TimeSpan.FromMilliseconds(200).Ticks, TimeSpan.FromSeconds(30).Ticks));
        using var timer = new PeriodicTimer(interval);
        do
        {
            try
            {
                _scores = await grains.GetGrain<ITrustGrain>(0).Scores().WaitAsync(TimeSpan.FromSeconds(10), stoppingToken);
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException)
            {
                LogRefreshFailed(logger, ex.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Trust scores not refreshed: {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, string reason);
}
