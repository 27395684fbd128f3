using System.Threading.RateLimiting;
using Grpc.Core;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Api;

/// <summary>Token buckets per peer (or per client address for anonymous calls), and per-peer session opens.</summary>
public sealed class RequestLimits : IDisposable
{
    private readonly PartitionedRateLimiter<string> _requests;
    private readonly PartitionedRateLimiter<string> _sessions;
    private readonly SupernodeMetrics _metrics;
    private readonly int _perSecond;
    private readonly int _sessionsPerMinute;

    public RequestLimits(SupernodeOptions options, SupernodeMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(options);
        _metrics = metrics;
        _perSecond = options.RequestsPerSecond;
        _sessionsPerMinute = options.SessionsPerMinute;
        _requests = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.RequestBurst,
            TokensPerPeriod = options.RequestsPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
        _sessions = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
        {
            PermitLimit = options.SessionsPerMinute,
            Window = TimeSpan.FromMinutes(1),
            SegmentsPerWindow = 6,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    /// <summary>Takes one request from <paramref name="key"/>'s bucket, or throws ResourceExhausted.</summary>
    public void Request(string key)
    {
        using var lease = _requests.AttemptAcquire(key);
        if (!lease.IsAcquired)
        {
            _metrics.RateLimited.Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"rate limit exceeded: at most {_perSecond} requests per second; slow down and retry"));
        }
    }

    /// <summary>Counts one new session for <paramref name="peer"/>, or throws ResourceExhausted.</summary>
    public void SessionOpen(string peer)
    {
        using var lease = _sessions.AttemptAcquire(peer);
        if (!lease.IsAcquired)
        {
            _metrics.RateLimited.Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"too many new sessions: at most {_sessionsPerMinute} per minute per peer; retry later"));
        }
    }

    public void Dispose()
    {
        _requests.Dispose();
        _sessions.Dispose();
    }
}
