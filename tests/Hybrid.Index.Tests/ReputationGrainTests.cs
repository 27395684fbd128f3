using System.Text.Json;
using Hybrid.Index.Reputation;
using Hybrid.Testing;
using Orleans.Core.Internal;

namespace Hybrid.Index.Tests;

/// <summary>
/// Reviews are the durable objects; a peer's reputation and the trust graph are derived from them.
/// In process (Orleans TestingHost), with storage that fails on demand and grains deactivated at
/// will: nothing acknowledged is lost, and the derived views converge to the reviews.
/// </summary>
public sealed class ReputationGrainTests(GrainHost host) : IClassFixture<GrainHost>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task AReviewWhoseForwardFailedIsInTheReputationOnceTheSubmissionIsRetried()
    {
        var (reviewId, submission) = Review("alice-1", "seller-1", stars: 5);
        var review = host.Grains.GetGrain<IReviewGrain>(reviewId);
        FaultyStores.FailNextWrites("reputation/seller-1");

        await Assert.ThrowsAnyAsync<Exception>(() => review.Submit(submission));
        var retried = await review.Submit(submission);

        Assert.Equal(ReviewOutcome.Unchanged, retried.Outcome);

        // Read from a fresh activation: what counts is what the reputation holds durably.
        var reputation = host.Grains.GetGrain<IReputationGrain>("seller-1");
        await reputation.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        var page = await reputation.Page(0, 10);
        Assert.Equal(reviewId, Assert.Single(page.ReviewIds));
        Assert.Equal(5, (await reputation.Summary()).Average);
    }

    [Fact]
    public async Task AStoredReviewWhoseForwardFailedLandsWithoutAnyRetryFromTheClient()
    {
        var (reviewId, submission) = Review("bob-1", "seller-2", stars: 4);
        FaultyStores.FailNextWrites(TrustGrain.InputSet);

        await Assert.ThrowsAnyAsync<Exception>(() => host.Grains.GetGrain<IReviewGrain>(reviewId).Submit(submission));

        await Eventually.ReturnsAsync(
            () => FaultyStores.Items.GetAsync(TrustGrain.InputSet, reviewId),
            input => input is not null,
            Deadline,
            "the review grain to forward the stored review to the trust graph by itself");
    }

    [Fact]
    public async Task TrustInputsOutliveTheTrustGrainAndReplacingAReviewReplacesItsInput()
    {
        var (reviewId, first) = Review(GrainHost.PreTrusted, "seller-3", stars: 5);
        var review = host.Grains.GetGrain<IReviewGrain>(reviewId);
        Assert.Equal(ReviewOutcome.Applied, (await review.Submit(first)).Outcome);

        // The trust grain goes away before it recomputed: what it was given is still there when it comes back.
        var trust = host.Grains.GetGrain<ITrustGrain>(0);
        await trust.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        await Eventually.ReturnsAsync(
            () => trust.Standing("seller-3"),
            standing => standing.Trust > 0,
            Deadline,
            "seller-3 to have trust from the pre-trusted peer's review after the trust grain was reactivated");

        // An amendment replaces the review's input (not added to it); a repeat of it changes nothing.
        var amended = first with { Version = 2, Stars = 1, Envelope = [2] };
        Assert.Equal(ReviewOutcome.Applied, (await review.Submit(amended)).Outcome);
        Assert.Equal(ReviewOutcome.Unchanged, (await review.Submit(amended)).Outcome);
        await trust.Put(new TrustInput(reviewId, GrainHost.PreTrusted, "seller-3", 1000, 1));
        var stored = JsonSerializer.Deserialize<TrustInput>((await FaultyStores.Items.GetAsync(TrustGrain.InputSet, reviewId))!)!;
        Assert.Equal(2UL, stored.Version);
        Assert.Equal(TrustGraph.Contribution(1, 20), stored.Contribution);
    }

    [Fact]
    public async Task EarlierVersionsAreKeptOneRecordEachAndComeBackInOrder()
    {
        var (reviewId, first) = Review("carol-1", "seller-4", stars: 2);
        var review = host.Grains.GetGrain<IReviewGrain>(reviewId);
        for (ulong version = 1; version <= 4; version++)
        {
            Assert.Equal(ReviewOutcome.Applied, (await review.Submit(first with { Version = version, Envelope = [(byte)version] })).Outcome);
        }

        await review.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        var stored = await review.Describe();

        Assert.Equal(4UL, stored!.Version);
        Assert.Equal([[1], [2], [3]], stored.History.Select(h => h.ToArray()));
        var history = new List<string>();
        await foreach (var (version, _) in FaultyStores.Items.ReadAllAsync($"review-history/{reviewId}", CancellationToken.None))
        {
            history.Add(version);
        }

        Assert.Equal(3, history.Count);
    }

    private static (string ReviewId, ReviewSubmission Submission) Review(string reviewer, string reviewed, uint stars)
    {
        var orderId = Guid.NewGuid().ToString("N");
        var reviewId = $"{orderId}:{reviewer}";
        return (reviewId, new ReviewSubmission(reviewer, reviewed, orderId, stars, 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), [1], 20));
    }
}
