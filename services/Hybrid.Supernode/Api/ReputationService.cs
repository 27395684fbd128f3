using Grpc.Core;
using Hybrid.Index.Reputation;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Api;

/// <summary>Reviews and reputation: only parties to a real order review it; nobody can delete a valid review.</summary>
public sealed class ReputationService(
    IGrainFactory grains,
    RequestLimits limits,
    IdentityAdmission admission,
    SupernodeMetrics metrics,
    ReplyPages pages,
    ReviewIntake intake,
    TimeProvider time) : ReputationApi.ReputationApiBase
{
    public override async Task<SubmitReviewResponse> SubmitReview(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var review = Checked(() => Reviews.Verify(request, time.GetUtcNow()));
        await admission.EnsureKnownAsync(review.Reviewer, request.SignerPublicKey.ToByteArray(), context);
        limits.ReviewWritten(review.Reviewer);
        var result = await intake.StoreAsync(review);
        Ensure(result);
        metrics.Reviews.WithLabels(result.Outcome.ToString().ToLowerInvariant()).Inc();
        return new SubmitReviewResponse { ReviewId = review.ReviewId, Version = result.Version };
    }

    public override async Task<ReplyToReviewResponse> ReplyToReview(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var reply = Checked(() => Reviews.VerifyReply(request, time.GetUtcNow()));
        await admission.EnsureKnownAsync(reply.Author, request.SignerPublicKey.ToByteArray(), context);
        limits.ReviewWritten(reply.Author);
        var result = await intake.StoreAsync(reply);
        Ensure(result);
        return new ReplyToReviewResponse { ReviewId = reply.ReviewId, Version = result.Version };
    }

    public override async Task<ReviewPage> ListReviews(ListReviewsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var peer = Requests.ParsePeer(request.PeerId, "peer id");
        var offset = Requests.Offset(request.PageToken);
        var limit = request.Limit <= 0 ? 20 : Math.Min(request.Limit, 100);
        var page = await grains.GetGrain<IReputationGrain>(peer.ToString()).Page(offset, limit);
        var stored = await Task.WhenAll(page.ReviewIds.Select(id => grains.GetGrain<IReviewGrain>(id).Describe()));
        var response = new ReviewPage { Total = page.Total };
        var records = stored.Select(r => r is null ? null : ToRecord(r)).ToList();
        var taken = pages.Fill(response.Reviews, records.OfType<ReviewRecord>().ToList(), r => r);
        // Reviews that vanished between the page and their look-up count as taken: they are not retried.
        var consumed = taken == records.Count(r => r is not null) ? page.ReviewIds.Length : IndexOfNth(records, taken);
        response.NextPageToken = offset + consumed < page.Total ? (offset + consumed).ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty;
        return response;
    }

    public override async Task<ReviewHistoryPage> ListReviewHistory(ListReviewHistoryRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        if (!Reviews.IsReviewId(request.ReviewId))
        {
            throw Requests.Invalid($"review id '{(request.ReviewId.Length > 40 ? request.ReviewId[..40] + "…" : request.ReviewId)}' is not one this network issues");
        }

        var offset = Requests.Offset(request.PageToken);
        if (request.Limit is < 0 or > 100)
        {
            throw Requests.Invalid($"limit must be 1-100 (got {request.Limit})");
        }

        var stored = await grains.GetGrain<IReviewGrain>(request.ReviewId).Describe()
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no review {request.ReviewId}"));
        var page = new ReviewHistoryPage { Total = stored.History.Length };
        var versions = stored.History.Skip(offset).Take(request.Limit == 0 ? 20 : request.Limit).Select(SignedEnvelope.Parser.ParseFrom).ToList();
        var taken = pages.Fill(page.Versions, versions, v => v);
        page.NextPageToken = offset + taken < stored.History.Length ? (offset + taken).ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty;
        return page;
    }

    public override async Task<Reputation> GetReputation(GetReputationRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var peer = Requests.ParsePeer(request.PeerId, "peer id").ToString();
        var summary = grains.GetGrain<IReputationGrain>(peer).Summary();
        var trust = grains.GetGrain<ITrustGrain>(0).Standing(peer);
        var mediated = grains.GetGrain<IMediatorGrain>(peer).Summary();
        var (s, t, m) = (await summary, await trust, await mediated);
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
            Mediator = new MediatorRecord { Verdicts = m.Verdicts, AcceptedByBoth = m.AcceptedByBoth, Rejected = m.Rejected, ForBuyer = m.ForBuyer, ForSeller = m.ForSeller, Splits = m.Splits },
        };
    }

    /// <summary>Bytes of earlier versions one review record carries; older versions beyond it are counted only.</summary>
    public const int MaxHistoryBytes = 48 * 1024;

    private static int IndexOfNth(List<ReviewRecord?> records, int n)
    {
        var seen = 0;
        for (var i = 0; i < records.Count; i++)
        {
            if (records[i] is not null && seen++ == n)
            {
                return i;
            }
        }

        return records.Count;
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
                    ReviewOutcome.TooManyVersions => StatusCode.ResourceExhausted,
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
        // Newest earlier versions first until the history budget is spent; the rest are counted, not sent.
        record.HistoryTotal = stored.History.Length;
        var historyBytes = 0;
        foreach (var version in stored.History.Reverse())
        {
            if (historyBytes + version.Length > MaxHistoryBytes)
            {
                break;
            }

            record.History.Insert(0, SignedEnvelope.Parser.ParseFrom(version));
            historyBytes += version.Length;
        }
        if (stored.Reply is { } reply)
        {
            record.Reply = SignedEnvelope.Parser.ParseFrom(reply);
            record.ReplyText = ReviewReply.Parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(record.Reply.Payload).Body).Text;
        }

        return record;
    }
}
