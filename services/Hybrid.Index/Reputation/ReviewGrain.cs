using Hybrid.Index.Storage;

namespace Hybrid.Index.Reputation;

/// <summary>Durable state of one review.</summary>
[GenerateSerializer, Alias("hybrid.ReviewState")]
public sealed class ReviewState
{
    [Id(0)] public StoredReview? Review { get; set; }

    [Id(1)] public ulong ReplyVersion { get; set; }

    [Id(2)] public double Contribution { get; set; }

    /// <summary>The version last forwarded to the reputation and trust grains (behind <see cref="StoredReview.Version"/> until it landed).</summary>
    [Id(3)] public ulong ForwardedVersion { get; set; }
}

/// <inheritdoc cref="IReviewGrain"/>
/// <remarks>
/// The review is the durable object; the reviewed peer's reputation and the trust graph are derived
/// from it. Forwarding is idempotent (both take the review's id and version and ignore what they
/// already hold) and is repeated until it lands: on a retried submission, and by a timer while the
/// grain is active with a forward outstanding (a forward that failed after the review was stored).
/// <para>Earlier versions are one durable item each (set <c>review-history/{id}</c>, keyed by
/// version): an amendment writes the version it replaces and the new current one, not the history.</para>
/// <para>Each review is also entered in the <see cref="ReviewCatalog"/> (with its forward, and with
/// each reply), which federation reconciles over.</para>
/// </remarks>
public sealed class ReviewGrain([PersistentState("review", IndexStorage.ProviderName)] IPersistentState<ReviewState> state, IItemStore items) : Grain, IReviewGrain
{
    /// <summary>Versions one review keeps (the current one and its history): amendments are bounded like any write.</summary>
    public const int MaxVersions = 20;

    /// <summary>How often an outstanding forward is tried again while the grain is active.</summary>
    public static readonly TimeSpan ForwardRetry = TimeSpan.FromSeconds(10);

    private IGrainTimer? _retry;

    // Earlier versions' envelopes by version, loaded from their items (the state keeps only the current one).
    private readonly SortedDictionary<ulong, byte[]> _history = [];

    private string HistorySet => $"review-history/{this.GetPrimaryKeyString()}";

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await foreach (var (version, envelope) in items.ReadAllAsync(HistorySet, cancellationToken))
        {
            _history[ulong.Parse(version, System.Globalization.CultureInfo.InvariantCulture)] = envelope;
        }

        if (state.State.Review is { History.Length: > 0 } legacy)
        {
            // An earlier version kept the history inside the state: each version becomes its item.
            var version = 0UL;
            foreach (var envelope in legacy.History)
            {
                var key = ++version;
                if (!_history.ContainsKey(key))
                {
                    await items.PutAsync(HistorySet, Key(key), envelope);
                    _history[key] = envelope;
                }
            }

            state.State.Review = legacy with { History = [] };
            await state.WriteStateAsync(cancellationToken);
        }

        if (Outstanding)
        {
            ScheduleRetry();
        }
    }

    private static string Key(ulong version) => version.ToString("D20", System.Globalization.CultureInfo.InvariantCulture);

    private bool Outstanding => state.State.Review is { } review && state.State.ForwardedVersion < review.Version;

    public async Task<ReviewResult> Submit(ReviewSubmission submission)
    {
        ArgumentNullException.ThrowIfNull(submission);
        var id = this.GetPrimaryKeyString();
        var current = state.State.Review;
        if (current is not null)
        {
            if (current.Envelope.AsSpan().SequenceEqual(submission.Envelope))
            {
                // A retry: whatever did not land the first time is forwarded now.
                await ForwardAsync();
                return new ReviewResult(ReviewOutcome.Unchanged, "already stored", current.Version);
            }

            if (submission.Version <= current.Version)
            {
                return new ReviewResult(ReviewOutcome.AlreadyReviewed, $"this order was already reviewed by {submission.Reviewer} (version {current.Version}); to amend the review, sign a newer version", current.Version);
            }

            if (_history.Count + 1 >= MaxVersions)
            {
                return new ReviewResult(ReviewOutcome.TooManyVersions, $"a review keeps at most {MaxVersions} versions, and this one has them all: it can no longer be amended", current.Version);
            }
        }

        var contribution = TrustGraph.Contribution(submission.Stars, submission.OrderValue);
        if (current is not null)
        {
            await items.PutAsync(HistorySet, Key(current.Version), current.Envelope);
            _history[current.Version] = current.Envelope;
        }

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
            [],
            current?.Reply);
        state.State.Contribution = contribution;
        await state.WriteStateAsync();
        try
        {
            await ForwardAsync();
        }
        catch
        {
            // Stored but not yet derived: keep trying while active; the caller's retry forwards too.
            ScheduleRetry();
            throw;
        }

        return new ReviewResult(ReviewOutcome.Applied, current is null ? "review stored" : "review amended", submission.Version);
    }

    /// <summary>Hands the stored review to the reviewed peer's reputation and to the trust graph (both idempotent), then records that it landed.</summary>
    private async Task ForwardAsync()
    {
        if (state.State.Review is not { } stored || state.State.ForwardedVersion >= stored.Version)
        {
            return;
        }

        await GrainFactory.GetGrain<IReputationGrain>(stored.Reviewed).Record(stored.ReviewId, stored.Stars, stored.CreatedMs, stored.UpdatedMs);
        await GrainFactory.GetGrain<ITrustGrain>(0).Put(new TrustInput(stored.ReviewId, stored.Reviewer, stored.Reviewed, state.State.Contribution, stored.Version));
        await ReviewCatalog.PutAsync(items, GrainFactory, stored.ReviewId, stored.Version, state.State.ReplyVersion);
        state.State.ForwardedVersion = stored.Version;
        await state.WriteStateAsync();
        _retry?.Dispose();
        _retry = null;
    }

    private void ScheduleRetry() =>
        _retry ??= this.RegisterGrainTimer(async _ => await ForwardAsync(), new GrainTimerCreationOptions(ForwardRetry, ForwardRetry) { Interleave = false });

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
            // A retry: the catalog entry may not have landed the first time.
            await ReviewCatalog.PutAsync(items, GrainFactory, review.ReviewId, review.Version, state.State.ReplyVersion);
            return new ReviewResult(ReviewOutcome.Unchanged, "already stored", state.State.ReplyVersion);
        }

        if (reply.Version <= state.State.ReplyVersion)
        {
            return new ReviewResult(ReviewOutcome.AlreadyReviewed, $"a reply of version {state.State.ReplyVersion} is stored; sign a newer version to change it", state.State.ReplyVersion);
        }

        state.State.Review = review with { Reply = reply.Envelope };
        state.State.ReplyVersion = reply.Version;
        await state.WriteStateAsync();
        await ReviewCatalog.PutAsync(items, GrainFactory, review.ReviewId, review.Version, reply.Version);
        return new ReviewResult(ReviewOutcome.Applied, "reply stored", reply.Version);
    }

    public Task<StoredReview?> Describe() =>
        Task.FromResult(state.State.Review is { } review ? review with { History = [.. _history.Where(h => h.Key < review.Version).Select(h => h.Value)] } : null);
}
