namespace Hybrid.Index.Reputation;

/// <summary>Durable state of one review.</summary>
[GenerateSerializer]
public sealed class ReviewState
{
    [Id(0)] public StoredReview? Review { get; set; }

    [Id(1)] public ulong ReplyVersion { get; set; }

    [Id(2)] public double Contribution { get; set; }
}

/// <inheritdoc cref="IReviewGrain"/>
public sealed class ReviewGrain([PersistentState("review", IndexStorage.ProviderName)] IPersistentState<ReviewState> state) : Grain, IReviewGrain
{
    /// <summary>Versions one review keeps (the current one and its history): amendments are bounded like any write.</summary>
    public const int MaxVersions = 20;

    public async Task<ReviewResult> Submit(ReviewSubmission submission)
    {
        ArgumentNullException.ThrowIfNull(submission);
        var id = this.GetPrimaryKeyString();
        var current = state.State.Review;
        if (current is not null)
        {
            if (current.Envelope.AsSpan().SequenceEqual(submission.Envelope))
            {
                return new ReviewResult(ReviewOutcome.Unchanged, "already stored", current.Version);
            }

            if (submission.Version <= current.Version)
            {
                return new ReviewResult(ReviewOutcome.AlreadyReviewed, $"this order was already reviewed by {submission.Reviewer} (version {current.Version}); to amend the review, sign a newer version", current.Version);
            }

            if (current.History.Length + 1 >= MaxVersions)
            {
                return new ReviewResult(ReviewOutcome.TooManyVersions, $"a review keeps at most {MaxVersions} versions, and this one has them all: it can no longer be amended", current.Version);
            }
        }

        var contribution = TrustGraph.Contribution(submission.Stars, submission.OrderValue);
        var delta = contribution - state.State.Contribution;
        state.State.Review = new StoredReview(
            id,
            submission.Reviewer,
            submission.Reviewed,
            submission.OrderId,
            submission.Stars,
            current?.CreatedMs ?? submission.IssuedMs,
            submission.IssuedMs,
            submission.Version,
            submission.Envelope,
            current is null ? [] : current.History.Add(current.Envelope),
            current?.Reply);
        state.State.Contribution = contribution;
        await state.WriteStateAsync();

        var stored = state.State.Review;
        await GrainFactory.GetGrain<IReputationGrain>(submission.Reviewed).Record(id, stored.Stars, stored.CreatedMs, stored.UpdatedMs);
        await GrainFactory.GetGrain<ITrustGrain>(0).Contribute(submission.Reviewer, submission.Reviewed, delta);
        return new ReviewResult(ReviewOutcome.Applied, current is null ? "review stored" : "review amended", submission.Version);
    }

    public async Task<ReviewResult> Reply(ReplySubmission reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        if (state.State.Review is not { } review)
        {
            return new ReviewResult(ReviewOutcome.NotFound, $"no review {this.GetPrimaryKeyString()}", 0);
        }

        if (review.Reviewed != reply.Author)
        {
            return new ReviewResult(ReviewOutcome.NotTheReviewed, "only the reviewed party may reply to a review", 0);
        }

        if (review.Reply is { } existing && existing.AsSpan().SequenceEqual(reply.Envelope))
        {
            return new ReviewResult(ReviewOutcome.Unchanged, "already stored", state.State.ReplyVersion);
        }

        if (reply.Version <= state.State.ReplyVersion)
        {
            return new ReviewResult(ReviewOutcome.AlreadyReviewed, $"a reply of version {state.State.ReplyVersion} is stored; sign a newer version to change it", state.State.ReplyVersion);
        }

        state.State.Review = review with { Reply = reply.Envelope };
        state.State.ReplyVersion = reply.Version;
        await state.WriteStateAsync();
        return new ReviewResult(ReviewOutcome.Applied, "reply stored", reply.Version);
    }

    public Task<StoredReview?> Describe() => Task.FromResult(state.State.Review);
}
