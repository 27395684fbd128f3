using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Index.Federation;
using Hybrid.Index.Listings;
using Hybrid.Index.Reputation;
using Hybrid.Index.Search;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Api;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using IdRange = Hybrid.Index.Federation.IdRange;

namespace Hybrid.Supernode.Federation;

/// <summary>
/// Pulls from every peer cluster, every <see cref="FederationOptions.Interval"/>, the live listings
/// it holds that this cluster lacks or holds at an older version: range-based set reconciliation
/// over (listing id, version), then a fetch of the listings found. Each listing is checked as if a
/// seller had published it here (signature, rules, quotas); a peer that sends one that does not
/// verify, or breaks the protocol, is throttled, and dropped after
/// <see cref="FederationOptions.MaxStrikes"/>. Clusters pull (never push), so what spreads from A to
/// C through B needs no trust in B: B only carries what A's sellers signed. In a cluster of several
/// supernodes one pulls at a time (<see cref="IFederationLeaseGrain"/>); another takes over when it
/// stops. A supernode on its own embedded store pulls without a lease.
/// </summary>
public sealed partial class FederationPuller(
    SupernodeOptions options,
    FederationIdentity identity,
    FederationPeers peers,
    LocalListings local,
    LocalReviews reviews,
    ReviewIntake intake,
    ShardedSearch search,
    IGrainFactory grains,
    SupernodeMetrics metrics,
    TimeProvider time,
    ILogger<FederationPuller> logger) : BackgroundService
{
    // Ranges are asked about level by level; an honest answer shrinks them 16-fold a level, so a
    // set of billions is done in under 10 levels. Past this, the answers do not narrow down.
    private const int MaxLevels = 16;

    // Ranges carried into the next level at most (a thousand requests): the rest of a very large
    // difference is found in later rounds, after what was found in this one has been taken.
    private const int MaxRangesPerLevel = 1024 * FederationWire.MaxRanges;
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(30);
    private readonly FederationOptions _federation = options.Federation;
    private readonly string _holder = Guid.NewGuid().ToString("N");

    /// <summary>The peer clusters and where each stands.</summary>
    public IReadOnlyList<PeerCluster> Peers => peers.All;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (Peers.Count == 0)
        {
            return;
        }

        LogStarted(logger, identity.ClusterId, Peers.Count, _federation.Interval.TotalSeconds);
        using var timer = new PeriodicTimer(_federation.Interval, time);
        do
        {
            await WithLearnedStoreAsync(() => peers.RecallLearnedAsync(stoppingToken), stoppingToken);
            if (!await HoldsLeaseAsync())
            {
                continue;
            }

            foreach (var peer in Peers)
            {
                if (peer.DroppedBecause is null && time.GetUtcNow() >= peer.NotBefore)
                {
                    await PullOnceAsync(peer, stoppingToken);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>
    /// Reads or writes the learned peers kept in the cluster's store (recalling those learned before a
    /// restart or by another supernode, or remembering a drop); a store that cannot be reached now is
    /// tried again at the next interval.
    /// </summary>
    private async Task WithLearnedStoreAsync(Func<Task> work, CancellationToken stoppingToken)
    {
        try
        {
            await work();
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            LogRecallFailed(logger, ex.Message);
        }
    }

    /// <summary>Whether this supernode is the one of its cluster that pulls now; false while the cluster cannot say.</summary>
    private async Task<bool> HoldsLeaseAsync()
    {
        if (!options.IsCluster)
        {
            // A supernode on its own store is its whole cluster: nobody to hand the lease to, and
            // its durable renewal would be the embedded store's one steady write (each write makes
            // every reader drop its page cache, and search fetches its pages from that store).
            return true;
        }

        // Held for several intervals (at least 30 s): a slow round does not hand the lease over.
        var length = TimeSpan.FromTicks(Math.Max(_federation.Interval.Ticks * 3, TimeSpan.FromSeconds(30).Ticks));
        try
        {
            return await grains.GetGrain<IFederationLeaseGrain>(0).Hold(_holder, length);
        }
        catch (Exception ex) when (ex is OrleansException or TimeoutException)
        {
            LogNoLease(logger, ex.Message);
            return false;
        }
    }

    /// <summary>One round with <paramref name="peer"/>; failures are logged and back the peer off, never thrown.</summary>
    public async Task PullOnceAsync(PeerCluster peer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(peer);
        try
        {
            var taken = await RoundAsync(peer, cancellationToken);
            peer.Failures = 0;
            if (taken > 0)
            {
                LogPulled(logger, taken, peer.Url, peer.ClusterId);
            }
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (PeerMisbehavedException ex)
        {
            Strike(peer, ex.Message);
            if (peer.DroppedBecause is not null && peer.LearnedFrom is not null)
            {
                // So no supernode of the cluster pulls from it again after a restart or a change of lease
                // (a failure to write it is logged, even while stopping: a round never throws).
                await WithLearnedStoreAsync(() => peers.RememberAsync(peer), CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            // Unreachable or refusing: try again later, backing off up to 32 intervals.
            BackOff(peer, "unreachable");
            LogUnreachable(logger, peer.Url, ex is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : ex.Message);
        }
        catch (Exception ex)
        {
            // This cluster's own side failed (storage, shards): the round is tried again later.
            BackOff(peer, "failed");
            LogRoundFailed(logger, ex, peer.Url);
        }
    }

    private async Task<int> RoundAsync(PeerCluster peer, CancellationToken cancellationToken)
    {
        var client = peers.Client(peer);
        var (clusterId, hello) = await HelloAsync(client, cancellationToken);
        if (peer.Pin is { } pin && pin != clusterId)
        {
            throw new PeerMisbehavedException($"it answers as cluster {clusterId}, and Supernode:Federation:Peers pins it to {pin}");
        }

        if (peer.PresentedKey is { } presented && presented != clusterId)
        {
            throw new PeerMisbehavedException($"its TLS key is cluster {presented}'s, and its hello is signed by {clusterId}");
        }

        if (clusterId == identity.ClusterId)
        {
            peer.DroppedBecause = "it is this cluster";
            LogDropped(logger, peer.Url, clusterId, peer.DroppedBecause);
            return 0;
        }

        if (peer.ClusterId is { } known && known != clusterId)
        {
            // The URL now answers with another key: strikes stay with the URL, the new id is checked afresh.
            LogChangedId(logger, peer.Url, known, clusterId);
        }

        peer.ClusterId = clusterId;
        if (peers.IsBlocked(clusterId))
        {
            peer.DroppedBecause = "its id is blocked by Supernode:Federation:Blocked";
            metrics.FederationRounds.WithLabels("blocked").Inc();
            LogDropped(logger, peer.Url, clusterId, peer.DroppedBecause);
            return 0;
        }

        // The clusters it pulls from: more of the federation, within this cluster's limits.
        await peers.LearnAndRememberAsync(peer, hello.Peers);
        var listings = await local.SnapshotAsync(fresh: true);
        var wanted = await DifferencesAsync(client, ObjectSet.Listings, listings, _federation.MaxListingsPerRound, cancellationToken);
        var taken = 0;
        foreach (var batch in wanted.Take(_federation.MaxListingsPerRound).Chunk(FederationWire.MaxFetch))
        {
            taken += await FetchAsync(client, clusterId, batch, cancellationToken);
        }

        // Reviews and replies: an item of either names the review to fetch (with its reply).
        var held = await reviews.SnapshotAsync(fresh: true);
        var wantedReviews = (await DifferencesAsync(client, ObjectSet.Reviews, held, _federation.MaxReviewsPerRound, cancellationToken))
            .Select(id => ReviewCatalog.ReviewIdOf(id)).Distinct(StringComparer.Ordinal);
        foreach (var batch in wantedReviews.Take(_federation.MaxReviewsPerRound).Chunk(FederationWire.MaxFetch))
        {
            taken += await FetchReviewsAsync(client, batch, cancellationToken);
        }

        metrics.FederationRounds.WithLabels("completed").Inc();
        return taken;
    }

    /// <summary>Who answers: the peer signs our nonce with its federation key (and names the clusters it pulls from).</summary>
    private async Task<(PeerId Cluster, FederationHelloAnswer Answer)> HelloAsync(FederationApi.FederationApiClient client, CancellationToken cancellationToken)
    {
        var nonce = RandomNumberGenerator.GetBytes(32);
        var answer = await client.HelloAsync(new FederationHello { Nonce = ByteString.CopyFrom(nonce), WantPeers = _federation.MaxLearnedPeers > 0 }, deadline: Deadline(), cancellationToken: cancellationToken);
        VerifiedEnvelope verified;
        try
        {
            verified = SignedEnvelopes.Verify(answer, EnvelopeKinds.FederationHello, time.GetUtcNow());
        }
        catch (EnvelopeRejectedException ex)
        {
            throw new PeerMisbehavedException($"its hello answer does not verify: {ex.Message}");
        }

        var body = verified.Body(FederationHelloAnswer.Parser);
        if (!body.Nonce.Span.SequenceEqual(nonce))
        {
            throw new PeerMisbehavedException("its hello answer signs another nonce than ours");
        }

        return (verified.Signer, body);
    }

    /// <summary>The ids the peer holds at a newer version than this cluster (or that this cluster lacks).</summary>
    private async Task<List<string>> DifferencesAsync(FederationApi.FederationApiClient client, ObjectSet set, HeldVersions mine, int most, CancellationToken cancellationToken)
    {
        var wanted = new List<string>();
        var level = new List<IdRange> { IdRange.All };
        for (var depth = 0; level.Count > 0 && wanted.Count < most; depth++)
        {
            if (depth == MaxLevels)
            {
                throw new PeerMisbehavedException($"its reconcile answers did not narrow down within {MaxLevels} levels");
            }

            var next = new List<IdRange>();
            foreach (var asked in level.Chunk(FederationWire.MaxRanges))
            {
                var request = new ReconcileRequest { Set = set };
                request.Ranges.AddRange(asked.Select(r => FederationWire.ToWire(r, mine.Offered.FingerprintOf(r))));
                var reply = await client.ReconcileAsync(request, deadline: Deadline(), cancellationToken: cancellationToken);
                var answers = FederationWire.ReadReply(set, asked, reply, out var problem) ?? throw new PeerMisbehavedException($"its reconcile answer about {set} is malformed: {problem}");
                var (want, deeper) = Reconciliation.Read(mine.Offered, mine.VersionOf, answers);
                wanted.AddRange(want);
                next.AddRange(deeper);
                if (wanted.Count >= most)
                {
                    // Enough for this round: the rest is found in the next.
                    break;
                }
            }

            level = next.Count <= MaxRangesPerLevel ? next : next[..MaxRangesPerLevel];
        }

        return wanted;
    }

    /// <summary>Fetches <paramref name="ids"/> and stores each that verifies; returns how many were stored.</summary>
    private async Task<int> FetchAsync(FederationApi.FederationApiClient client, PeerId peerCluster, string[] ids, CancellationToken cancellationToken)
    {
        var request = new FetchListingsRequest();
        request.ListingIds.AddRange(ids);
        var reply = await client.FetchListingsAsync(request, deadline: Deadline(), cancellationToken: cancellationToken);
        var asked = ids.ToHashSet(StringComparer.Ordinal);
        var accepted = new List<CheckedListing>(reply.Listings.Count);
        foreach (var held in reply.Listings)
        {
            CheckedListing listing;
            try
            {
                listing = held.Withdrawal is null
                    ? ListingIntake.Check(held.Listing, time.GetUtcNow())
                    : ListingIntake.CheckWithdrawn(held.Listing, held.Withdrawal, time.GetUtcNow());
            }
            catch (Exception ex) when (ex is EnvelopeRejectedException or ListingRefusedException)
            {
                metrics.FederationListings.WithLabels("refused").Inc();
                throw new PeerMisbehavedException($"it sent a listing that does not verify: {ex.Message}");
            }

            if (!asked.Remove(listing.Stored.ListingId))
            {
                metrics.FederationListings.WithLabels("refused").Inc();
                throw new PeerMisbehavedException($"it sent listing {listing.Stored.ListingId}, which was not asked for (or sent it twice)");
            }

            // Where the listing was published, as the peer says (it cannot be checked); by default the peer itself.
            if (held.OriginCluster.Length > 0 && !PeerId.TryParse(held.OriginCluster, out _, out _))
            {
                throw new PeerMisbehavedException($"it names '{held.OriginCluster[..Math.Min(40, held.OriginCluster.Length)]}' as a listing's origin, which is not a cluster id");
            }

            accepted.Add(listing with { Stored = listing.Stored with { Origin = held.OriginCluster.Length > 0 ? held.OriginCluster : peerCluster.ToString() } });
        }

        // Every listing of the batch checked out: the shards take them together (their writes are committed in groups).
        var results = await Task.WhenAll(accepted.Select(l => search.ShardOf(l.Stored.ListingId).Publish(l.Stored)));
        var stored = 0;
        foreach (var result in results)
        {
            metrics.FederationListings.WithLabels(result.Outcome.ToString().ToLowerInvariant()).Inc();
            stored += result.Outcome == ListingOutcome.Applied ? 1 : 0;
        }

        return stored;
    }

    /// <summary>Fetches the reviews <paramref name="ids"/> (with their replies) and stores each; returns how many reviews or replies were stored.</summary>
    private async Task<int> FetchReviewsAsync(FederationApi.FederationApiClient client, string[] ids, CancellationToken cancellationToken)
    {
        var request = new FetchReviewsRequest();
        request.ReviewIds.AddRange(ids);
        var reply = await client.FetchReviewsAsync(request, deadline: Deadline(), cancellationToken: cancellationToken);
        var asked = ids.ToHashSet(StringComparer.Ordinal);
        var accepted = new List<(VerifiedReview Review, VerifiedReply? Reply)>(reply.Reviews.Count);
        foreach (var held in reply.Reviews)
        {
            VerifiedReview review;
            VerifiedReply? answer;
            try
            {
                // As if its author sent it here: the review with its co-signed receipt, the reply by the reviewed party.
                review = Reviews.Verify(held.Review ?? throw new ReviewRejectedException(ReviewFault.Invalid, "a review is missing"), time.GetUtcNow());
                answer = held.Reply is null ? null : Reviews.VerifyReply(held.Reply, time.GetUtcNow());
            }
            catch (Exception ex) when (ex is EnvelopeRejectedException or ReviewRejectedException)
            {
                metrics.FederationReviews.WithLabels("refused").Inc();
                throw new PeerMisbehavedException($"it sent a review that does not verify: {ex.Message}");
            }

            if (!asked.Remove(review.ReviewId))
            {
                metrics.FederationReviews.WithLabels("refused").Inc();
                throw new PeerMisbehavedException($"it sent review {review.ReviewId}, which was not asked for (or sent it twice)");
            }

            if (answer is not null && (answer.ReviewId != review.ReviewId || !answer.Author.Equals(review.Reviewed)))
            {
                metrics.FederationReviews.WithLabels("refused").Inc();
                throw new PeerMisbehavedException($"it sent, with review {review.ReviewId}, a reply that is not the reviewed party's reply to it");
            }

            accepted.Add((review, answer));
        }

        // Every review of the batch checked out: each is stored as if its author had submitted it
        // here, side by side (one grain each); a reply after its review.
        var stored = await Task.WhenAll(accepted.Select(async pair =>
        {
            var result = await intake.StoreAsync(pair.Review);
            metrics.FederationReviews.WithLabels(result.Outcome.ToString().ToLowerInvariant()).Inc();
            var applied = result.Outcome == ReviewOutcome.Applied ? 1 : 0;
            if (pair.Reply is not null)
            {
                var replied = await intake.StoreAsync(pair.Reply);
                metrics.FederationReviews.WithLabels($"reply_{replied.Outcome.ToString().ToLowerInvariant()}").Inc();
                applied += replied.Outcome == ReviewOutcome.Applied ? 1 : 0;
            }

            return applied;
        }));
        return stored.Sum();
    }

    private void BackOff(PeerCluster peer, string outcome)
    {
        peer.Failures++;
        peer.NotBefore = time.GetUtcNow() + (_federation.Interval * (1 << Math.Min(5, peer.Failures - 1)));
        metrics.FederationRounds.WithLabels(outcome).Inc();
    }

    private void Strike(PeerCluster peer, string why)
    {
        peer.Strikes++;
        metrics.FederationRounds.WithLabels("struck").Inc();
        if (peer.Strikes >= _federation.MaxStrikes)
        {
            peer.DroppedBecause = $"{peer.Strikes} strikes, the last: {why}";
            LogDropped(logger, peer.Url, peer.ClusterId, peer.DroppedBecause);
            return;
        }

        // Throttled: each strike doubles the wait before the next round with this peer.
        peer.NotBefore = time.GetUtcNow() + (_federation.Interval * (1 << Math.Min(10, peer.Strikes)));
        LogStruck(logger, peer.Url, peer.ClusterId, peer.Strikes, _federation.MaxStrikes, why);
    }

    private DateTime Deadline() => time.GetUtcNow().UtcDateTime + CallDeadline;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Federation: the learned peer clusters kept in the cluster's store could not be read or written ({Reason}); trying again at the next interval")]
    private static partial void LogRecallFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Federation: cluster {ClusterId} pulls from {Peers} peer clusters every {Seconds} s")]
    private static partial void LogStarted(ILogger logger, PeerId clusterId, int peers, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Federation: took {Count} listings, reviews and replies from {Url} (cluster {ClusterId})")]
    private static partial void LogPulled(ILogger logger, int count, string url, PeerId? clusterId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Federation: peer cluster at {Url} is unreachable or refused ({Reason}); trying again later")]
    private static partial void LogUnreachable(ILogger logger, string url, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Federation: could not learn which supernode of the cluster pulls ({Reason}); trying again next interval")]
    private static partial void LogNoLease(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Federation: a round with the peer cluster at {Url} failed on this side; trying again later")]
    private static partial void LogRoundFailed(ILogger logger, Exception exception, string url);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Federation: peer cluster at {Url} (cluster {ClusterId}) struck {Strikes} of {MaxStrikes} and throttled: {Reason}")]
    private static partial void LogStruck(ILogger logger, string url, PeerId? clusterId, int strikes, int maxStrikes, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Federation: peer cluster at {Url} (cluster {ClusterId}) dropped: {Reason}")]
    private static partial void LogDropped(ILogger logger, string url, PeerId? clusterId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Federation: peer cluster at {Url} now answers as cluster {NewId} (was {OldId})")]
    private static partial void LogChangedId(ILogger logger, string url, PeerId oldId, PeerId newId);
}

/// <summary>A peer cluster sent something that does not verify or breaks the protocol.</summary>
public sealed class PeerMisbehavedException : Exception
{
    public PeerMisbehavedException(string message)
        : base(message)
    {
    }

    public PeerMisbehavedException()
    {
    }

    public PeerMisbehavedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
