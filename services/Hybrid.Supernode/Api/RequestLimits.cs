using System.Net;
using System.Threading.RateLimiting;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Api;

/// <summary>
/// Partitioned rate limits, each charged to whoever spends it: anonymous calls to the caller's
/// address (IPv6 grouped by /64), authenticated calls to the session's peer, and session control
/// (heartbeats, endpoint updates) to a bucket of its own so no flood of calls can end a session.
/// Never to the signer of an object someone submits: replaying another peer's envelope costs the replayer.
/// </summary>
public sealed class RequestLimits : IDisposable
{
    private readonly KeyedTokenBuckets _calls;
    private readonly KeyedTokenBuckets _control;
    private readonly KeyedTokenBuckets _clusters;
    private readonly KeyedTokenBuckets _remoteLookups;
    private readonly int _clusterCallsPerSecond;
    private readonly KeyedTokenBuckets _sessions;
    private readonly KeyedTokenBuckets _mailKiB;
    private readonly TokenBucketRateLimiter _allMailKiB;
    private readonly KeyedTokenBuckets _reviews;
    private readonly SupernodeOptions _options;
    private readonly SupernodeMetrics _metrics;
    private readonly int _perSecond;
    private readonly int _controlPerSecond;
    private readonly int _sessionsPerMinute;

    public RequestLimits(SupernodeOptions options, SupernodeMetrics metrics, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _metrics = metrics;
        _options = options;
        _perSecond = options.RequestsPerSecond;
        _controlPerSecond = options.ControlMessagesPerSecond;
        _sessionsPerMinute = options.SessionsPerMinute;
        _calls = new KeyedTokenBuckets(Math.Max(options.RequestBurst, options.RequestsPerSecond), options.RequestsPerSecond, TimeSpan.FromSeconds(1), time);
        _remoteLookups = new KeyedTokenBuckets(RemoteLookupsPerSecond * 4, RemoteLookupsPerSecond, TimeSpan.FromSeconds(1), time);
        _clusterCallsPerSecond = options.Federation.CallsPerSecond;
        _clusters = new KeyedTokenBuckets(_clusterCallsPerSecond * 2, _clusterCallsPerSecond, TimeSpan.FromSeconds(1), time);
        _control = new KeyedTokenBuckets(options.ControlMessagesPerSecond * 4, options.ControlMessagesPerSecond, TimeSpan.FromSeconds(1), time);
        _sessions = new KeyedTokenBuckets(options.SessionsPerMinute, options.SessionsPerMinute, TimeSpan.FromMinutes(1), time);
        _mailKiB = HourlyBuckets((int)Math.Clamp(options.MailboxBytesPerSenderPerHour / 1024, 64, int.MaxValue), time);
        _reviews = HourlyBuckets(options.ReviewsPerIdentityPerHour, time);
        var allPerHour = (int)Math.Clamp(options.MailboxBytesPerHour / 1024, 64, int.MaxValue);
        _allMailKiB = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = allPerHour,
            TokensPerPeriod = Math.Max(1, allPerHour / 60),
            ReplenishmentPeriod = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    /// <summary>Charges a sealed item's bytes to its sender's hourly mailbox budget (over all recipients).</summary>
    public void MailDeposit(PeerId sender, int bytes)
    {
        if (!_mailKiB.TryTake(sender.ToString(), Math.Max(1, bytes / 1024)))
        {
            _metrics.QuotaRefusals.WithLabels("mailbox_bytes").Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"you have deposited your hourly share of mailbox bytes ({_options.MailboxBytesPerSenderPerHour} per hour, all recipients together); wait for recipients to come online"));
        }

        using var all = _allMailKiB.AttemptAcquire(Math.Max(1, bytes / 1024));
        if (!all.IsAcquired)
        {
            _metrics.QuotaRefusals.WithLabels("mailbox_total").Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, "this supernode takes no more mail this hour; deliver directly or try another supernode later"));
        }
    }

    /// <summary>Counts one review or reply written by <paramref name="author"/> against its hourly budget.</summary>
    public void ReviewWritten(PeerId author)
    {
        if (!_reviews.TryTake(author.ToString()))
        {
            _metrics.QuotaRefusals.WithLabels("reviews").Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"at most {_options.ReviewsPerIdentityPerHour} reviews and replies per identity per hour; try again later"));
        }
    }

    /// <summary>Charges one call to the caller's address (anonymous calls, and writes of signed objects).</summary>
    public void Call(ServerCallContext context) => Take(_calls, "addr:" + ClientAddresses.Key(context), $"at most {_perSecond} requests per second from one address");

    /// <summary>Charges one call to the authenticated peer whose session made it.</summary>
    public void Call(PeerId sessionPeer) => Take(_calls, "peer:" + sessionPeer, $"at most {_perSecond} requests per second per peer");

    /// <summary>Look-ups one address may have asked of federated clusters per second; past it, look-ups answer from this cluster alone.</summary>
    public const int RemoteLookupsPerSecond = 5;

    /// <summary>Whether the caller's address may have one more look-up asked of federated clusters now (each costs a call to every peer cluster).</summary>
    public bool RemoteLookup(ServerCallContext context) => _remoteLookups.TryTake(ClientAddresses.Key(context));

    /// <summary>Charges one federation call to the peer cluster whose key made it (on the federation listener).</summary>
    public void Cluster(PeerId cluster) => Take(_clusters, cluster.ToString(), $"at most {_clusterCallsPerSecond} federation calls per second per cluster");

    /// <summary>Charges one session control message (heartbeat, endpoint update) to its own budget.</summary>
    public void Control(PeerId peer) => Take(_control, peer.ToString(), $"at most {_controlPerSecond} session messages per second");

    /// <summary>Counts one new session for <paramref name="peer"/>, or throws ResourceExhausted.</summary>
    public void SessionOpen(string peer)
    {
        if (!_sessions.TryTake(peer))
        {
            _metrics.RateLimited.Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"too many new sessions: at most {_sessionsPerMinute} per minute per peer; retry later"));
        }
    }

    public void Dispose() => _allMailKiB.Dispose();

    private void Take(KeyedTokenBuckets buckets, string key, string limit)
    {
        if (!buckets.TryTake(key))
        {
            _metrics.RateLimited.Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"rate limit exceeded: {limit}; slow down and retry"));
        }
    }

    // A budget per key refilled evenly over the hour, at most an hour's worth saved.
    private static KeyedTokenBuckets HourlyBuckets(int perHour, TimeProvider time) => new(perHour, perHour, TimeSpan.FromHours(1), time);
}

/// <summary>Who a caller is, network-wise, for budgets.</summary>
public static class ClientAddresses
{
    /// <summary>
    /// The caller's address as budgets see it: IPv4 as is, IPv6 by its /64 (one home or host gets a
    /// whole /64, so per-address budgets would be free to multiply). Forwarded headers from a
    /// configured trusted proxy have already replaced the socket address by then.
    /// </summary>
    public static string Key(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Key(context.GetHttpContext().Connection.RemoteIpAddress) ?? context.Peer;
    }

    /// <inheritdoc cref="Key(ServerCallContext)"/>
    public static string? Key(IPAddress? address)
    {
        if (address is null)
        {
            return null;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }
}
