using System.Security.Cryptography;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Reputation;

/// <summary>A review whose signature, receipt and fields all check out.</summary>
public sealed record VerifiedReview(
    string ReviewId,
    PeerId Reviewer,
    PeerId Reviewed,
    VerifiedReceipt Receipt,
    Review Body,
    ulong Version,
    DateTimeOffset IssuedAt,
    SignedEnvelope Envelope);

/// <summary>A reply whose signature and fields check out (who may reply is the review's business).</summary>
public sealed record VerifiedReply(string ReviewId, PeerId Author, string Text, ulong Version, SignedEnvelope Envelope);

/// <summary>Why a review or reply was refused.</summary>
public enum ReviewFault
{
    /// <summary>Bad envelope, bad receipt, out-of-range fields.</summary>
    Invalid,

    /// <summary>Signed by someone who is not a party to the order (or replying to a review not about them).</summary>
    NotAParty,
}

/// <summary>A refused review or reply, with the reason a person can act on.</summary>
public sealed class ReviewRejectedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ReviewRejectedException(ReviewFault fault, string message)
        : base(message) => Fault = fault;

    /// <summary>Creates the exception.</summary>
    public ReviewRejectedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public ReviewRejectedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ReviewRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Why.</summary>
    public ReviewFault Fault { get; }
}

/// <summary>
/// Reviews backed by real orders: a review embeds the receipt co-signed by buyer and seller, is
/// signed by one of them, and rates the other. Its id is derived from the order's signed offer and
/// the reviewer, so each side reviews an order once (newer versions amend that one review).
/// </summary>
public static class Reviews
{
    /// <summary>Longest review or reply text, in characters.</summary>
    public const int MaxTextLength = 2000;

    /// <summary>Most per-aspect scores on one review.</summary>
    public const int MaxAspects = 8;

    /// <summary>How long a review envelope is valid (reviews are kept; the expiry only bounds replays of old bytes).</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(3650);

    /// <summary>The id of <paramref name="reviewer"/>'s review of the order whose signed offer is <paramref name="offer"/>.</summary>
    public static string ReviewId(SignedEnvelope offer, PeerId reviewer)
    {
        ArgumentNullException.ThrowIfNull(offer);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData("hybrid.review-id.v1\n"u8);
        hash.AppendData(Receipts.HashOf(offer));
        hash.AppendData(reviewer.Hash);
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..32];
    }

    /// <summary>Whether <paramref name="id"/> has the form of a review id (32 lowercase hex characters).</summary>
    public static bool IsReviewId(string? id) => id is { Length: 32 } && id.All(char.IsAsciiHexDigitLower);

    /// <summary>Signs a review as <paramref name="reviewer"/>; <paramref name="version"/> grows with each amendment.</summary>
    public static SignedEnvelope Sign(PeerIdentity reviewer, Review review, ulong version, DateTimeOffset now) =>
        SignedEnvelopes.Sign(reviewer, EnvelopeKinds.Review, version, review, now, now + Lifetime);

    /// <summary>Signs a reply as the reviewed party.</summary>
    public static SignedEnvelope SignReply(PeerIdentity author, string reviewId, string text, ulong version, DateTimeOffset now) =>
        SignedEnvelopes.Sign(author, EnvelopeKinds.ReviewReply, version, new ReviewReply { ReviewId = reviewId, Text = text }, now, now + Lifetime);

    /// <summary>Checks a review completely.</summary>
    /// <exception cref="EnvelopeRejectedException">The review envelope itself is forged, expired or malformed.</exception>
    /// <exception cref="ReviewRejectedException">No receipt, a receipt that does not verify, a third party, bad fields.</exception>
    public static VerifiedReview Verify(SignedEnvelope envelope, DateTimeOffset now)
    {
        var verified = SignedEnvelopes.Verify(envelope, EnvelopeKinds.Review, now);
        var review = verified.Body(Review.Parser);
        if (review.Receipt is null)
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, "a review needs the receipt of the order it is about: only real, completed orders can be reviewed");
        }

        VerifiedReceipt receipt;
        try
        {
            receipt = Receipts.Verify(review.Receipt, now);
        }
        catch (EnvelopeRejectedException ex)
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, $"the review's receipt does not verify: {ex.Message}");
        }

        PeerId other;
        if (verified.Signer.Equals(receipt.Buyer))
        {
            other = receipt.Seller;
        }
        else if (verified.Signer.Equals(receipt.Seller))
        {
            other = receipt.Buyer;
        }
        else
        {
            throw new ReviewRejectedException(ReviewFault.NotAParty, "only the buyer or the seller of an order may review it");
        }

        if (review.Reviewed != other.ToString())
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, $"a review of this order rates {other}, the other party");
        }

        CheckFields(review);
        if (review.HasVerdictAccepted && receipt.State != OrderState.Decided)
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, "only the review of an order its mediator decided says whether the verdict is accepted");
        }

        return new VerifiedReview(ReviewId(review.Receipt.Offer, verified.Signer), verified.Signer, other, receipt, review, verified.Version, DateTimeOffset.FromUnixTimeMilliseconds(verified.Payload.IssuedAtMs), envelope);
    }

    /// <summary>How the reviewed order ended, as people read it (from the verified receipt).</summary>
    public static string Outcome(VerifiedReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        return receipt.State switch
        {
            OrderState.AutoCompleted => "completed by its deadline",
            OrderState.Decided when receipt.Verdict is { Outcome: "split" } v => $"decided by the mediator: split, {v.BuyerSharePercent}% to the buyer",
            OrderState.Decided => $"decided by the mediator for the {receipt.Verdict?.Outcome}",
            _ => receipt.Satisfied ? "completed" : "completed, buyer not satisfied",
        };
    }

    /// <summary>Checks a reply's signature and fields.</summary>
    public static VerifiedReply VerifyReply(SignedEnvelope envelope, DateTimeOffset now)
    {
        var verified = SignedEnvelopes.Verify(envelope, EnvelopeKinds.ReviewReply, now);
        var reply = verified.Body(ReviewReply.Parser);
        if (string.IsNullOrWhiteSpace(reply.Text) || reply.Text.Length > MaxTextLength)
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, $"a reply has 1-{MaxTextLength} characters");
        }

        if (!IsReviewId(reply.ReviewId))
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, "a reply names the review it answers (32 hex characters)");
        }

        return new VerifiedReply(reply.ReviewId, verified.Signer, reply.Text, verified.Version, envelope);
    }

    private static void CheckFields(Review review)
    {
        if (review.Stars is < 1 or > 5)
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, $"stars must be 1-5 (got {review.Stars})");
        }

        if (review.Text.Length > MaxTextLength)
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, $"review text is {review.Text.Length} characters; at most {MaxTextLength}");
        }

        if (review.Aspects.Count > MaxAspects || review.Aspects.Any(a => a.Key.Length is 0 or > 32 || a.Value is < 1 or > 5))
        {
            throw new ReviewRejectedException(ReviewFault.Invalid, $"at most {MaxAspects} aspects, each named in 1-32 characters and scored 1-5");
        }
    }
}
