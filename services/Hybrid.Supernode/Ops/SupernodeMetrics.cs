using Prometheus;

namespace Hybrid.Supernode.Ops;

/// <summary>The supernode's own Prometheus series (.NET meters of ASP.NET Core and Orleans are bridged too).</summary>
public sealed class SupernodeMetrics
{
    public Gauge SessionsActive { get; } = Metrics.CreateGauge("hybrid_sessions_active", "Peer sessions currently open on this supernode.");

    public Counter SessionsOpened { get; } = Metrics.CreateCounter("hybrid_sessions_opened_total", "Peer sessions authenticated on this supernode since start.");

    public Counter SessionsEnded { get; } = Metrics.CreateCounter("hybrid_sessions_ended_total", "Authenticated sessions ended, by how: closed (the peer ended it), dropped (its stream or connection was cut), timeout (no heartbeat), superseded (a newer session of the peer), stuck (it read too slowly), draining (this supernode is leaving), error.", "how");

    public Counter SessionsRefused { get; } = Metrics.CreateCounter("hybrid_sessions_refused_total", "Session attempts refused, by reason.", "reason");

    public Counter FederationPeersLearned { get; } = Metrics.CreateCounter("hybrid_federation_peers_learned_total", "Peer clusters introduced by the peers this cluster pulls from, by outcome (learned, known, refused_address, over_limit, invalid).", "outcome");

    public Counter FederationRounds { get; } = Metrics.CreateCounter("hybrid_federation_rounds_total", "Reconciliation rounds with peer clusters, by outcome (completed, unreachable, struck, blocked).", "outcome");

    public Counter FederationListings { get; } = Metrics.CreateCounter("hybrid_federation_listings_total", "Listings fetched from peer clusters, by what became of them (applied, unchanged, replayed, over_quota, refused, ...).", "outcome");

    public Counter FederationReviews { get; } = Metrics.CreateCounter("hybrid_federation_reviews_total", "Reviews and replies fetched from peer clusters, by what became of them (applied, unchanged, already_reviewed, refused, reply_applied, ...).", "outcome");

    public Counter CallsUnavailable { get; } = Metrics.CreateCounter("hybrid_calls_unavailable_total", "Calls answered Unavailable because the cluster or its store failed them for a moment (a supernode leaving, Redis away, a grain moved), by method and by what failed (the exception's type); clients retry them.", "method", "cause");

    public Counter SessionOpenWaits { get; } = Metrics.CreateCounter("hybrid_session_open_waits_total", "Times a session open found the peer's directory grain unreachable (its supernode just died, not yet declared dead) and waited to ask again instead of turning the peer away.");

    public Counter Lookups { get; } = Metrics.CreateCounter("hybrid_lookups_total", "LookupPeer calls answered by this supernode.");

    public Counter RateLimited { get; } = Metrics.CreateCounter("hybrid_rate_limited_total", "Calls and session messages refused by the per-peer rate limit.");

    public Counter IdentitiesAdmitted { get; } = Metrics.CreateCounter("hybrid_identities_admitted_total", "New identities admitted by this supernode (work stamp checked, budgets charged).");

    public Counter IdentitiesRefused { get; } = Metrics.CreateCounter("hybrid_identities_refused_total", "New identities refused, by reason.", "reason");

    public Counter QuotaRefusals { get; } = Metrics.CreateCounter("hybrid_quota_refusals_total", "Writes refused by a per-identity quota, by quota.", "quota");

    public Counter DialBacks { get; } = Metrics.CreateCounter("hybrid_dial_backs_total", "Dial-backs of announced endpoints, by outcome.", "outcome");

    public Gauge RelayLinksActive { get; } = Metrics.CreateGauge("hybrid_relay_links_active", "Relayed peer links currently piped by this supernode.");

    public Counter RelayLinks { get; } = Metrics.CreateCounter("hybrid_relay_links_total", "Relayed peer links, by outcome.", "outcome");

    public Counter RelayFrames { get; } = Metrics.CreateCounter("hybrid_relay_frames_total", "Data frames piped between relayed peers (bytes / frames is the mean frame size).");

    public Counter RelayBytes { get; } = Metrics.CreateCounter("hybrid_relay_bytes_total", "Bytes piped between relayed peers (both directions; ciphertext).");

    public Counter MailDeposited { get; } = Metrics.CreateCounter("hybrid_mail_deposited_total", "Sealed items deposited into mailboxes through this supernode.");

    public Counter MailDelivered { get; } = Metrics.CreateCounter("hybrid_mail_delivered_total", "Mailbox items taken and acknowledged by their recipients through this supernode.");

    public Histogram SearchSeconds { get; } = Metrics.CreateHistogram("hybrid_search_duration_seconds", "Time to answer a search (fan-out to every shard, merge, fetch).", new HistogramConfiguration
    {
        Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16),
    });

    public Counter Publishes { get; } = Metrics.CreateCounter("hybrid_listings_published_total", "Listing publish calls that reached the index, by outcome.", "outcome");

    public Counter Withdrawals { get; } = Metrics.CreateCounter("hybrid_listings_withdrawn_total", "Listing withdrawals that reached the index, by outcome.", "outcome");

    public Counter Reviews { get; } = Metrics.CreateCounter("hybrid_reviews_total", "Reviews accepted by this supernode, by outcome (applied: new or amended).", "outcome");
}
