using Prometheus;

namespace Hybrid.Supernode.Ops;

/// <summary>The supernode's own Prometheus series (.NET meters of ASP.NET Core and Orleans are bridged too).</summary>
public sealed class SupernodeMetrics
{
    public Gauge SessionsActive { get; } = Metrics.CreateGauge("hybrid_sessions_active", "Peer sessions currently open on this supernode.");

    public Counter SessionsOpened { get; } = Metrics.CreateCounter("hybrid_sessions_opened_total", "Peer sessions authenticated on this supernode since start.");

    public Counter SessionsRefused { get; } = Metrics.CreateCounter("hybrid_sessions_refused_total", "Session attempts refused, by reason.", "reason");

    public Counter Lookups { get; } = Metrics.CreateCounter("hybrid_lookups_total", "LookupPeer calls answered by this supernode.");

    public Counter RateLimited { get; } = Metrics.CreateCounter("hybrid_rate_limited_total", "Calls and session messages refused by the per-peer rate limit.");
}
