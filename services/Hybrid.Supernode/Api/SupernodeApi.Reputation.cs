using Google.Protobuf;
using Grpc.Core;
using Hybrid.Index.Reputation;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;

namespace Hybrid.Supernode.Api;

/// <summary>Reviews and reputation: only parties to a real order review it; nobody can delete a valid review.</summary>
public sealed partial class SupernodeApi
{
    public override async Task<SubmitReviewResponse> SubmitReview(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Request(ClientAddress(context));
        var review = Checked(() => Reviews.Verify(request, time.GetUtcNow()));
        limits.Request(review.Reviewer.ToString());
        var offer = review.Receipt.Offer;
        var value = offer.UnitPrice.Units * (double)offer.Quantity;
        var result = await grains.GetGrain<IReviewGrain>(review.ReviewId).Submit(new ReviewSubmission(
            review.Reviewer.ToString(), review.Reviewed.ToString(), review.Receipt.OrderId, review.Body.Stars, review.Version,
            review.IssuedAt.ToUnixTimeMilliseconds(), request.ToByteArray(), value));
        Ensure(result);
        metrics.Reviews.WithLabels(result.Outcome.ToString().ToLowerInvariant()).Inc();
        return new SubmitReviewResponse { ReviewId = review.ReviewId, Version = result.Version };
    }

    public override async Task<ReplyToReviewResponse> ReplyToReview(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Request(ClientAddress(context));
        var reply = Checked(() => Reviews.VerifyReply(request, time.GetUtcNow()));
        limits.Request(reply.Author.ToString());
        var result = await grains.GetGrain<IReviewGrain>(reply.ReviewId).Reply(new ReplySubmission(reply.Author.ToString(), reply.Version, request.ToByteArray(), reply.Text));
        Ensure(result);
        return new ReplyToReviewResponse { ReviewId = reply.ReviewId, Version = result.Version };
    }

    public override async Task<ReviewPage> ListReviews(ListReviewsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Request(ClientAddress(context));
        var peer = ParsePeer(request.PeerId, "peer id");
        var offset = string.IsNullOrEmpty(request.PageToken) ? 0
            : int.TryParse(request.PageToken, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var o) ? o
            : throw Invalid("page_token is not one this supernode issued");
        var limit = request.Limit <= 0 ? 20 : Math.Min(request.Limit, 100);
        var page = await grains.GetGrain<IReputationGrain>(peer.ToString()).Page(offset, limit);
        var stored = await Task.WhenAll(page.ReviewIds.Select(id => grains.GetGrain<IReviewGrain>(id).Describe()));
        var response = new ReviewPage { Total = page.Total, NextPageToken = offset + page.ReviewIds.Length < page.Total ? (offset + page.ReviewIds.Length).ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty };
        response.Reviews.AddRange(stored.Where(r => r is not null).Select(r => ToRecord(r!)));
        return response;
    }

    public override async Task<Reputation> GetReputation(GetReputationRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Request(ClientAddress(context));
        var peer = ParsePeer(request.PeerId, "peer id").ToString();
        var summary = grains.GetGrain<IReputationGrain>(peer).Summary();
        var trust = grains.GetGrain<ITrustGrain>(0).Standing(peer);
        var (s, t) = (await summary, await trust);
        return new Reputation
        {
            PeerId = peer,
            Count = s.Count,
            Average = s.Average,
            Bayesian = s.Bayesian,
            RecentAverage = s.RecentAverage,
            Trend = s.Trend,
            Trust = t.Trust,
            TrustScore = t.Score,
            TrustComputedMs = t.ComputedAt == DateTimeOffset.MinValue ? 0 : t.ComputedAt.ToUnixTimeMilliseconds(),
            TrustPeers = t.Peers,
        };
    }

    private static T Checked<T>(Func<T> verify)
    {
        try
        {
            return verify();
        }
        catch (ReviewRejectedException ex)
        {
            throw new RpcException(new Status(ex.Fault == ReviewFault.NotAParty ? StatusCode.PermissionDenied : StatusCode.InvalidArgument, ex.Message));
        }
    }

    private static void Ensure(ReviewResult result)
    {
        if (!result.Succeeded)
        {
            throw new RpcException(new Status(
                result.Outcome switch
                {
                    ReviewOutcome.AlreadyReviewed => StatusCode.AlreadyExists,
                    ReviewOutcome.NotFound => StatusCode.NotFound,
                    ReviewOutcome.NotTheReviewed => StatusCode.PermissionDenied,
                    _ => StatusCode.FailedPrecondition,
                },
                result.Message));
        }
    }

    private static ReviewRecord ToRecord(StoredReview stored)
    {
        var envelope = SignedEnvelope.Parser.ParseFrom(stored.Envelope);
        var body = Review.Parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(envelope.Payload).Body);
        var record = new ReviewRecord
        {
            ReviewId = stored.ReviewId,
            Reviewer = stored.Reviewer,
            Reviewed = stored.Reviewed,
            OrderId = stored.OrderId,
            Stars = stored.Stars,
            Text = body.Text,
            CreatedMs = stored.CreatedMs,
            UpdatedMs = stored.UpdatedMs,
            Version = stored.Version,
            Envelope = envelope,
        };
        record.Aspects.Add(body.Aspects);
        record.History.AddRange(stored.History.Select(SignedEnvelope.Parser.ParseFrom));
        if (stored.Reply is { } reply)
        {
            record.Reply = SignedEnvelope.Parser.ParseFrom(reply);
            record.ReplyText = ReviewReply.Parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(record.Reply.Payload).Body).Text;
        }

        return record;
    }
}
