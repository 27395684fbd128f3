using System.Collections.Immutable;

namespace Hybrid.Index.Reputation;

/// <summary>One review, already verified by the supernode that received it.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ReviewSubmission")]
public sealed record ReviewSubmission(
    [property: Id(0)] string Reviewer,
    [property: Id(1)] string Reviewed,
    [property: Id(2)] string OrderId,
    [property: Id(3)] uint Stars,
    [property: Id(4)] ulong Version,
    [property: Id(5)] long IssuedMs,
    [property: Id(6)] byte[] Envelope,
    [property: Id(7)] double OrderValue);

/// <summary>A reply, already verified.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ReplySubmission")]
public sealed record ReplySubmission(
    [property: Id(0)] string Author,
    [property: Id(1)] ulong Version,
    [property: Id(2)] byte[] Envelope,
    [property: Id(3)] string Text);

/// <summary>How a review write went.</summary>
[GenerateSerializer, Alias("hybrid.ReviewOutcome")]
public enum ReviewOutcome
{
    /// <summary>Stored (new, or a newer version).</summary>
    Applied = 0,

    /// <summary>The same signed bytes again: nothing to do.</summary>
    Unchanged = 1,

    /// <summary>Refused: this reviewer already reviewed this order at this or a newer version.</summary>
    AlreadyReviewed = 2,

    /// <summary>Refused: no such review.</summary>
    NotFound = 3,

    /// <summary>Refused: only the reviewed party may reply.</summary>
    NotTheReviewed = 4,

    /// <summary>Refused: the review has as many versions as one may keep.</summary>
    TooManyVersions = 5,
}

/// <summary>The outcome of a review write.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ReviewResult")]
public sealed record ReviewResult([property: Id(0)] ReviewOutcome Outcome, [property: Id(1)] string Message, [property: Id(2)] ulong Version)
{
    /// <summary>Whether the write took effect or changed nothing.</summary>
    public bool Succeeded => Outcome is ReviewOutcome.Applied or ReviewOutcome.Unchanged;
}

/// <summary>A stored review with its history and reply.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.StoredReview")]
public sealed record StoredReview(
    [property: Id(0)] string ReviewId,
    [property: Id(1)] string Reviewer,
    [property: Id(2)] string Reviewed,
    [property: Id(3)] string OrderId,
    [property: Id(4)] uint Stars,
    [property: Id(5)] long CreatedMs,
    [property: Id(6)] long UpdatedMs,
    [property: Id(7)] ulong Version,
    [property: Id(8)] byte[] Envelope,
    [property: Id(9)] ImmutableArray<byte[]> History,
    [property: Id(10)] byte[]? Reply);

/// <summary>A peer's standing from the reviews it received.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ReviewSummary")]
public sealed record ReviewSummary(
    [property: Id(0)] long Count,
    [property: Id(1)] double Average,
    [property: Id(2)] double Bayesian,
    [property: Id(3)] double RecentAverage,
    [property: Id(4)] double Trend);

/// <summary>A page of review ids, newest first.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ReviewIdPage")]
public sealed record ReviewIdPage([property: Id(0)] ImmutableArray<string> ReviewIds, [property: Id(1)] long Total);

/// <summary>One peer's global trust, as last computed.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.TrustStanding")]
public sealed record TrustStanding(
    [property: Id(0)] double Trust,
    [property: Id(1)] int Score,
    [property: Id(2)] DateTimeOffset ComputedAt,
    [property: Id(3)] int Peers);

/// <summary>Every peer's trust score (0-100), for ranking.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.TrustScores")]
public sealed record TrustScores(
    [property: Id(0)] ImmutableDictionary<string, int> Scores,
    [property: Id(1)] DateTimeOffset ComputedAt);

/// <summary>One review of one order by one side, keyed by its review id.</summary>
[Alias("hybrid.IReviewGrain")]
public interface IReviewGrain : IGrainWithStringKey
{
    Task<ReviewResult> Submit(ReviewSubmission submission);

    Task<ReviewResult> Reply(ReplySubmission reply);

    [Orleans.Concurrency.AlwaysInterleave]
    Task<StoredReview?> Describe();
}

/// <summary>The reviews a peer received (ids and stars), keyed by PeerId.</summary>
[Alias("hybrid.IReputationGrain")]
public interface IReputationGrain : IGrainWithStringKey
{
    Task Record(string reviewId, uint stars, long createdMs, long updatedMs);

    [Orleans.Concurrency.AlwaysInterleave]
    Task<ReviewIdPage> Page(int offset, int limit);

    [Orleans.Concurrency.AlwaysInterleave]
    Task<ReviewSummary> Summary();
}

/// <summary>A mediator's record: decided orders seen in reviews, and what the parties said of the verdicts.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.MediatorSummary")]
public sealed record MediatorSummary(
    [property: Id(0)] long Verdicts,
    [property: Id(1)] long AcceptedByBoth,
    [property: Id(2)] long Rejected,
    [property: Id(3)] long ForBuyer,
    [property: Id(4)] long ForSeller,
    [property: Id(5)] long Splits);

/// <summary>A mediator's record, keyed by its PeerId.</summary>
[Alias("hybrid.IMediatorGrain")]
public interface IMediatorGrain : IGrainWithStringKey
{
    /// <summary>Records what a review of a decided order says (its outcome, and whether its author accepts the verdict).</summary>
    Task Record(string orderId, string outcome, bool reviewerIsBuyer, bool? accepts);

    [Orleans.Concurrency.AlwaysInterleave]
    Task<MediatorSummary> Summary();
}

/// <summary>What one review (at one version) puts into the receipt graph.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.TrustInput")]
public sealed record TrustInput(
    [property: Id(0)] string ReviewId,
    [property: Id(1)] string Reviewer,
    [property: Id(2)] string Reviewed,
    [property: Id(3)] double Contribution,
    [property: Id(4)] ulong Version);

/// <summary>The receipt graph and global trust over it (one per cluster, key 0).</summary>
[Alias("hybrid.ITrustGrain")]
public interface ITrustGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Sets a review's contribution (idempotent: an input of the same or an older version than the
    /// one held changes nothing); returns once it is durable.
    /// </summary>
    [Alias("Put")]
    Task Put(TrustInput input);

    [Orleans.Concurrency.AlwaysInterleave]
    Task<TrustStanding> Standing(string peer);

    [Orleans.Concurrency.AlwaysInterleave]
    Task<TrustScores> Scores();
}

/// <summary>Settings of global trust, set by the supernode operators.</summary>
public sealed class TrustOptions
{
    /// <summary>Peers the operators trust from the start: trust enters the graph only through them.</summary>
    public IReadOnlyList<string> PreTrusted { get; set; } = [];

    /// <summary>How often trust is recomputed when reviews arrived.</summary>
    public TimeSpan RecomputeInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Share of trust that goes back to the pre-trusted peers each step (EigenTrust's a).</summary>
    public double Alpha { get; set; } = 0.15;
}
