using System.Security.Cryptography;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Orders;

/// <summary>A checked offer.</summary>
public sealed record VerifiedOffer(SignedEnvelope Envelope, OrderOffer Offer, PeerId Buyer, PeerId Seller, DateTimeOffset ExpiresAt);

/// <summary>A receipt whose three signatures and links all check out.</summary>
public sealed record VerifiedReceipt(
    string OrderId,
    PeerId Buyer,
    PeerId Seller,
    OrderOffer Offer,
    bool Satisfied,
    DateTimeOffset CompletedAt,
    byte[] Hash);

/// <summary>
/// The order protocol's signed steps and the receipt they add up to: the buyer signs an offer, the
/// seller signs an acceptance that names the offer by hash, the buyer signs a completion that names
/// the acceptance by hash. The three envelopes together are a receipt co-signed by both parties that
/// anyone can verify without asking either of them.
/// </summary>
public static class Receipts
{
    /// <summary>How long an offer waits for the seller.</summary>
    public static readonly TimeSpan OfferLifetime = TimeSpan.FromDays(30);

    /// <summary>How long an acceptance waits for the buyer's completion.</summary>
    public static readonly TimeSpan AcceptanceLifetime = TimeSpan.FromDays(90);

    /// <summary>How long a completion (and so the receipt) is valid for reviews.</summary>
    public static readonly TimeSpan CompletionLifetime = TimeSpan.FromDays(3650);

    /// <summary>The hash by which a later step names an earlier one: SHA-256 of its signed payload.</summary>
    public static byte[] HashOf(SignedEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        return SHA256.HashData(envelope.Payload.Span);
    }

    /// <summary>Signs an offer as <paramref name="buyer"/>.</summary>
    public static SignedEnvelope SignOffer(PeerIdentity buyer, OrderOffer offer, DateTimeOffset now) =>
        SignedEnvelopes.Sign(buyer, EnvelopeKinds.OrderOffer, 1, offer, now, now + OfferLifetime);

    /// <summary>Signs the acceptance of <paramref name="offer"/> as <paramref name="seller"/>.</summary>
    public static SignedEnvelope SignAcceptance(PeerIdentity seller, SignedEnvelope offer, string orderId, DateTimeOffset now) =>
        SignedEnvelopes.Sign(seller, EnvelopeKinds.OrderAcceptance, 1, new OrderAcceptance { OrderId = orderId, OfferHash = Google.Protobuf.ByteString.CopyFrom(HashOf(offer)) }, now, now + AcceptanceLifetime);

    /// <summary>Signs the completion of an accepted order as <paramref name="buyer"/>.</summary>
    public static SignedEnvelope SignCompletion(PeerIdentity buyer, SignedEnvelope acceptance, string orderId, bool satisfied, DateTimeOffset now) =>
        SignedEnvelopes.Sign(buyer, EnvelopeKinds.OrderCompletion, 1, new OrderCompletion { OrderId = orderId, AcceptanceHash = Google.Protobuf.ByteString.CopyFrom(HashOf(acceptance)), Satisfied = satisfied }, now, now + CompletionLifetime);

    /// <summary>Checks an offer as it arrives (at <paramref name="now"/>).</summary>
    /// <exception cref="EnvelopeRejectedException">Bad signature, wrong kind, expired, or nonsense fields.</exception>
    public static VerifiedOffer VerifyOffer(SignedEnvelope envelope, DateTimeOffset now) => CheckOffer(SignedEnvelopes.Verify(envelope, EnvelopeKinds.OrderOffer, now));

    /// <summary>Checks the seller's acceptance of <paramref name="offer"/> as it arrives.</summary>
    public static void VerifyAcceptance(SignedEnvelope acceptance, VerifiedOffer offer, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(offer);
        CheckAcceptance(SignedEnvelopes.Verify(acceptance, EnvelopeKinds.OrderAcceptance, now, offer.Seller), offer);
    }

    /// <summary>Checks the buyer's completion of an accepted order as it arrives.</summary>
    public static OrderCompletion VerifyCompletion(SignedEnvelope completion, SignedEnvelope acceptance, VerifiedOffer offer, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(offer);
        return CheckCompletion(SignedEnvelopes.Verify(completion, EnvelopeKinds.OrderCompletion, now, offer.Buyer), acceptance, offer);
    }

    /// <summary>
    /// Verifies a whole receipt: each envelope's signature at the time it was issued, each step signed by
    /// the right party and naming the previous one, each step made before the previous one expired, and
    /// the completion still valid at <paramref name="now"/>.
    /// </summary>
    /// <exception cref="EnvelopeRejectedException">Any check fails; the message says which.</exception>
    public static VerifiedReceipt Verify(Receipt receipt, DateTimeOffset now)
    {
        if (receipt is null || receipt.Offer is null || receipt.Acceptance is null || receipt.Completion is null)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "a receipt needs the offer, the acceptance and the completion");
        }

        var offer = CheckOffer(SignedEnvelopes.Verify(receipt.Offer, EnvelopeKinds.OrderOffer, IssuedAt(receipt.Offer)));
        var acceptanceAt = IssuedAt(receipt.Acceptance);
        CheckAcceptance(SignedEnvelopes.Verify(receipt.Acceptance, EnvelopeKinds.OrderAcceptance, acceptanceAt, offer.Seller), offer);
        if (acceptanceAt > offer.ExpiresAt)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Expired, "the offer had expired before the seller accepted it");
        }

        var completion = SignedEnvelopes.Verify(receipt.Completion, EnvelopeKinds.OrderCompletion, now, offer.Buyer);
        var completed = CheckCompletion(completion, receipt.Acceptance, offer);
        var completedAt = DateTimeOffset.FromUnixTimeMilliseconds(completion.Payload.IssuedAtMs);
        if (completedAt > DateTimeOffset.FromUnixTimeMilliseconds(EnvelopePayload.Parser.ParseFrom(receipt.Acceptance.Payload).ExpiresAtMs))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Expired, "the acceptance had expired before the buyer completed the order");
        }

        var hash = SHA256.HashData(Google.Protobuf.MessageExtensions.ToByteArray(receipt));
        return new VerifiedReceipt(offer.Offer.OrderId, offer.Buyer, offer.Seller, offer.Offer, completed.Satisfied, completedAt, hash);
    }

    private static DateTimeOffset IssuedAt(SignedEnvelope envelope)
    {
        try
        {
            return DateTimeOffset.FromUnixTimeMilliseconds(EnvelopePayload.Parser.ParseFrom(envelope.Payload).IssuedAtMs);
        }
        catch (Exception ex) when (ex is Google.Protobuf.InvalidProtocolBufferException or ArgumentOutOfRangeException)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"receipt envelope does not parse: {ex.Message}");
        }
    }

    private static VerifiedOffer CheckOffer(VerifiedEnvelope verified)
    {
        var offer = verified.Body(OrderOffer.Parser);
        if (!ListingRules.IsListingId(offer.OrderId, out _) || !ListingRules.IsListingId(offer.ListingId, out _))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "offer has a malformed order id or listing id");
        }

        if (!PeerId.TryParse(offer.Seller, out var seller, out var error))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"offer names no valid seller: {error}");
        }

        if (seller.Equals(verified.Signer))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "a seller cannot buy from itself");
        }

        if (offer.Quantity == 0 || offer.UnitPrice is null)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "offer needs a quantity of at least 1 and a price");
        }

        return new VerifiedOffer(verified.Envelope, offer, verified.Signer, seller, DateTimeOffset.FromUnixTimeMilliseconds(verified.Payload.ExpiresAtMs));
    }

    private static void CheckAcceptance(VerifiedEnvelope verified, VerifiedOffer offer)
    {
        var acceptance = verified.Body(OrderAcceptance.Parser);
        if (acceptance.OrderId != offer.Offer.OrderId || !CryptographicOperations.FixedTimeEquals(acceptance.OfferHash.Span, HashOf(offer.Envelope)))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "the acceptance names another offer");
        }
    }

    private static OrderCompletion CheckCompletion(VerifiedEnvelope verified, SignedEnvelope acceptance, VerifiedOffer offer)
    {
        var completion = verified.Body(OrderCompletion.Parser);
        if (completion.OrderId != offer.Offer.OrderId || !CryptographicOperations.FixedTimeEquals(completion.AcceptanceHash.Span, HashOf(acceptance)))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "the completion names another acceptance");
        }

        return completion;
    }
}
