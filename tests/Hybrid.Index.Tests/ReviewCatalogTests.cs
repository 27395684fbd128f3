using Hybrid.Index.Federation;
using Hybrid.Index.Reputation;

namespace Hybrid.Index.Tests;

/// <summary>
/// Federation reconciles over the review catalog and reuses its last snapshot while the catalog's
/// generation stands still: every stored review, amendment and reply must move it, and a repeat
/// that changes nothing need not.
/// </summary>
public sealed class ReviewCatalogTests(GrainHost host) : IClassFixture<GrainHost>
{
    [Fact]
    public async Task TheCatalogsGenerationMovesWithEveryReviewAmendmentAndReplyStoredAndHoldsOtherwise()
    {
        var catalog = host.Grains.GetGrain<IReviewCatalogGrain>(0);
        var orderId = Guid.NewGuid().ToString("N");
        var reviewId = $"{orderId}:dana-1";
        var review = host.Grains.GetGrain<IReviewGrain>(reviewId);
        var submission = new ReviewSubmission("dana-1", "seller-9", orderId, 4, 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), [1], 20);

        var before = await catalog.Generation();
        Assert.Equal(ReviewOutcome.Applied, (await review.Submit(submission)).Outcome);
        var stored = await catalog.Generation();
        Assert.NotEqual(before, stored);
        Assert.Contains(new VersionedId(reviewId, 1), await ReviewCatalog.ReadAsync(FaultyStores.Items, CancellationToken.None));

        Assert.Equal(ReviewOutcome.Unchanged, (await review.Submit(submission)).Outcome);
        Assert.Equal(stored, await catalog.Generation());

        Assert.Equal(ReviewOutcome.Applied, (await review.Submit(submission with { Version = 2, Stars = 2, Envelope = [2] })).Outcome);
        var amended = await catalog.Generation();
        Assert.NotEqual(stored, amended);

        Assert.Equal(ReviewOutcome.Applied, (await review.Reply(new ReplySubmission("seller-9", 1, [7], "Thank you"))).Outcome);
        Assert.NotEqual(amended, await catalog.Generation());
        Assert.Contains(new VersionedId(ReviewCatalog.ReplyId(reviewId), 1), await ReviewCatalog.ReadAsync(FaultyStores.Items, CancellationToken.None));
    }
}
