using Google.Protobuf;
using Hybrid.Index.Reputation;
using Hybrid.Protocol.Reputation;

namespace Hybrid.Supernode.Api;

/// <summary>
/// Stores a verified review or reply, wherever it came from: a reviewer's own call, or a peer
/// cluster that held it. What a review derives (the reviewed party's reputation, the trust graph,
/// the mediator's record) follows from storing it.
/// </summary>
public sealed class ReviewIntake(IGrainFactory grains, OrderValues orderValues)
{
    /// <summary>Stores <paramref name="review"/> (already verified); the mediator's record is updated for a decided order's new review.</summary>
    public async Task<ReviewResult> StoreAsync(VerifiedReview review)
    {
        ArgumentNullException.ThrowIfNull(review);
        var offer = review.Receipt.Offer;
        var value = orderValues.InEuros(offer.UnitPrice.Currency, offer.UnitPrice.Units, offer.UnitPrice.Nanos, offer.Quantity);
        var result = await grains.GetGrain<IReviewGrain>(review.ReviewId).Submit(new ReviewSubmission(
            review.Reviewer.ToString(), review.Reviewed.ToString(), review.Receipt.OrderId, review.Body.Stars, review.Version,
            review.IssuedAt.ToUnixTimeMilliseconds(), review.Envelope.ToByteArray(), value));
        if (result.Outcome == ReviewOutcome.Applied && review.Receipt is { State: Protocol.Orders.OrderState.Decided, Verdict: { } verdict })
        {
            // The mediator's record: this order was decided, and what this party says of the verdict.
            await grains.GetGrain<IMediatorGrain>(offer.Mediator).Record(
                review.Receipt.OrderId, verdict.Outcome, review.Reviewer.Equals(review.Receipt.Buyer), review.Body.HasVerdictAccepted ? review.Body.VerdictAccepted : null);
        }

        return result;
    }

    /// <summary>Stores <paramref name="reply"/> (already verified) with the review it answers.</summary>
    public Task<ReviewResult> StoreAsync(VerifiedReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        return grains.GetGrain<IReviewGrain>(reply.ReviewId).Reply(new ReplySubmission(reply.Author.ToString(), reply.Version, reply.Envelope.ToByteArray(), reply.Text));
    }
}
