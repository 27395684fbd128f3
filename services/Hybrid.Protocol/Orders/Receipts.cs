using System.Security.Cryptography;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Orders;

/// <summary>A checked offer.</summary>
public sealed record VerifiedOffer(SignedEnvelope Envelope, OrderOffer Offer, PeerId Buyer, PeerId Seller, DateTimeOffset ExpiresAt);

/// <summary>A finished receipt whose signatures and links all check out.</summary>
/// <param name="OrderId">The order's id.</param>
/// <param name="Buyer">Who signed the offer.</param>
/// <param name="Seller">Who accepted it.</param>
/// <param name="Offer">What was ordered, at what price.</param>
/// <param name="Hash">SHA-256 of the receipt's bytes.</param>
/// <param name="Verdict">The mediator's verdict, for a decided order.</param>
/// <param name="State">How it ended: <see cref="OrderState.Completed"/>, <see cref="OrderState.AutoCompleted"/> or <see cref="OrderState.Decided"/>.</param>
/// <param name="Satisfied">The buyer's word when it completed; true when completed by the deadline; for a verdict, whether it went the seller's way.</param>
/// <param name="CompletedAt">When it ended (the completion, the verdict, or the deadline).</param>
public sealed record VerifiedReceipt(
    string OrderId,
    PeerId Buyer,
    PeerId Seller,
    OrderOffer Offer,
    bool Satisfied,
    DateTimeOffset CompletedAt,
    byte[] Hash,
    OrderState State = OrderState.Completed,
    OrderVerdict? Verdict = null);

/// <summary>Where an order stands, as its signed steps say.</summary>
public enum OrderState
{
    /// <summary>The buyer's offer waits for the seller.</summary>
    Offered,

    /// <summary>The offer expired unanswered.</summary>
    Expired,

    /// <summary>The seller declined (final).</summary>
    Declined,

    /// <summary>The seller accepted; the buyer has not answered yet.</summary>
    Accepted,

    /// <summary>The acceptance expired with no step after it (final).</summary>
    Lapsed,

    /// <summary>The buyer marked it paid (outside the network).</summary>
    Paid,

    /// <summary>The seller fulfilled it (shipped, delivered, performed).</summary>
    Fulfilled,

    /// <summary>Either side cancelled it before fulfilment (final).</summary>
    Cancelled,

    /// <summary>Either side opened a dispute; the mediator decides.</summary>
    Disputed,

    /// <summary>The buyer completed it (final).</summary>
    Completed,

    /// <summary>Fulfilled, and neither completed nor disputed by the deadline the acceptance set (final).</summary>
    AutoCompleted,

    /// <summary>The mediator signed a verdict (final).</summary>
    Decided,
}

/// <summary>An order's chain of signed steps, checked: who, where it stands, and what the next step must name.</summary>
public sealed record OrderTrace(
    VerifiedOffer Offer,
    OrderAcceptance? Acceptance,
    OrderState State,
    byte[] LastHash,
    DateTimeOffset LastAt,
    bool Paid,
    OrderFulfilled? Fulfilment,
    DateTimeOffset? AutoCompletesAt,
    DateTimeOffset? AnswerBy,
    PeerId? EndedBy,
    string Reason,
    OrderCompletion? Completion,
    OrderVerdict? Verdict)
{
    /// <summary>Whether no further step can follow.</summary>
    public bool IsFinal => State is OrderState.Expired or OrderState.Declined or OrderState.Lapsed or OrderState.Cancelled or OrderState.Completed or OrderState.AutoCompleted or OrderState.Decided;
}

/// <summary>
/// The order protocol's signed steps and the receipt they add up to. The buyer signs an offer; the
/// seller accepts it (naming it by hash, with payment instructions and the auto-completion period)
/// or declines it; then the buyer may mark it paid, the seller marks it fulfilled, either side may
/// cancel before fulfilment or open a dispute before the end; it ends with the buyer's completion,
/// by the deadline after fulfilment, or with the verdict of the mediator the offer named. Each step
/// names the previous one by hash, so the chain is one receipt co-signed by the parties that anyone
/// can verify from its bytes alone.
/// </summary>
public static class Receipts
{
    /// <summary>How long an offer waits for the seller.</summary>
    public static readonly TimeSpan OfferLifetime = TimeSpan.FromDays(30);

    /// <summary>How long an acceptance waits for the buyer's completion.</summary>
    public static readonly TimeSpan AcceptanceLifetime = TimeSpan.FromDays(90);

    /// <summary>How long a completion (and so the receipt) is valid for reviews.</summary>
    public static readonly TimeSpan CompletionLifetime = TimeSpan.FromDays(3650);

    /// <summary>Days after fulfilment a silent buyer's order completes itself, unless the acceptance says otherwise.</summary>
    public const uint DefaultAutoCompleteDays = 14;

    /// <summary>Longest reason, note, carrier, tracking reference or payment instructions, in characters.</summary>
    public const int MaxText = 500;

    /// <summary>How far a step's clock may be behind the previous step's.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

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
    public static SignedEnvelope SignAcceptance(PeerIdentity seller, SignedEnvelope offer, string orderId, DateTimeOffset now, string paymentInstructions = "", uint autoCompleteDays = 0) =>
        SignedEnvelopes.Sign(seller, EnvelopeKinds.OrderAcceptance, 1, new OrderAcceptance
        {
            OrderId = orderId,
            OfferHash = Google.Protobuf.ByteString.CopyFrom(HashOf(offer)),
            PaymentInstructions = paymentInstructions,
            AutoCompleteDays = autoCompleteDays,
        }, now, now + AcceptanceLifetime);

    /// <summary>Signs the completion of an accepted order as <paramref name="buyer"/>; <paramref name="previous"/> is the last step (the acceptance or a progress step).</summary>
    public static SignedEnvelope SignCompletion(PeerIdentity buyer, SignedEnvelope previous, string orderId, bool satisfied, DateTimeOffset now) =>
        SignedEnvelopes.Sign(buyer, EnvelopeKinds.OrderCompletion, 1, new OrderCompletion { OrderId = orderId, AcceptanceHash = Google.Protobuf.ByteString.CopyFrom(HashOf(previous)), Satisfied = satisfied }, now, now + CompletionLifetime);

    /// <summary>Signs a progress step (declined, paid, fulfilled, cancelled, disputed) naming <paramref name="previous"/>.</summary>
    public static SignedEnvelope SignProgress(PeerIdentity party, SignedEnvelope previous, OrderProgress step, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(step);
        step.PreviousHash = Google.Protobuf.ByteString.CopyFrom(HashOf(previous));
        return SignedEnvelopes.Sign(party, EnvelopeKinds.OrderProgress, 1, step, now, now + CompletionLifetime);
    }

    /// <summary>Signs the mediator's verdict on the dispute step <paramref name="dispute"/>.</summary>
    public static SignedEnvelope SignVerdict(PeerIdentity mediator, SignedEnvelope dispute, OrderVerdict verdict, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(verdict);
        verdict.DisputeHash = Google.Protobuf.ByteString.CopyFrom(HashOf(dispute));
        return SignedEnvelopes.Sign(mediator, EnvelopeKinds.OrderVerdict, 1, verdict, now, now + CompletionLifetime);
    }

    /// <summary>The last step of a chain: the one the next step must name.</summary>
    public static SignedEnvelope LastStep(Receipt chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        return chain.Verdict ?? chain.Completion ?? (chain.Steps.Count > 0 ? chain.Steps[^1] : null) ?? chain.Acceptance ?? chain.Offer;
    }

    /// <summary>Checks an offer as it arrives (at <paramref name="now"/>).</summary>
    /// <exception cref="EnvelopeRejectedException">Bad signature, wrong kind, expired, or nonsense fields.</exception>
    public static VerifiedOffer VerifyOffer(SignedEnvelope envelope, DateTimeOffset now) => CheckOffer(SignedEnvelopes.Verify(envelope, EnvelopeKinds.OrderOffer, now));

    /// <summary>
    /// Verifies a finished receipt (for a review): the whole chain as <see cref="Trace"/> checks it, and
    /// an end: the buyer's completion, the deadline after fulfilment passed, or the mediator's verdict.
    /// </summary>
    /// <exception cref="EnvelopeRejectedException">Any check fails, or the order is not finished; the message says which.</exception>
    public static VerifiedReceipt Verify(Receipt receipt, DateTimeOffset now)
    {
        var trace = Trace(receipt, now);
        var hash = SHA256.HashData(Google.Protobuf.MessageExtensions.ToByteArray(receipt));
        var offer = trace.Offer;
        return trace.State switch
        {
            OrderState.Completed => new VerifiedReceipt(offer.Offer.OrderId, offer.Buyer, offer.Seller, offer.Offer, trace.Completion!.Satisfied, trace.LastAt, hash),
            OrderState.AutoCompleted => new VerifiedReceipt(offer.Offer.OrderId, offer.Buyer, offer.Seller, offer.Offer, true, trace.AutoCompletesAt!.Value, hash, OrderState.AutoCompleted),
            OrderState.Decided => new VerifiedReceipt(offer.Offer.OrderId, offer.Buyer, offer.Seller, offer.Offer, trace.Verdict!.Outcome == "seller", trace.LastAt, hash, OrderState.Decided, trace.Verdict),
            _ => throw new EnvelopeRejectedException(EnvelopeFault.Malformed, trace.State is OrderState.Declined or OrderState.Cancelled or OrderState.Expired or OrderState.Lapsed
                ? $"a receipt needs a finished order; this one was {trace.State.ToString().ToLowerInvariant()}"
                : $"a receipt needs a finished order (completed, completed by its deadline, or decided); this one is {trace.State.ToString().ToLowerInvariant()}"),
        };
    }

    /// <summary>
    /// Checks an order's chain as far as it goes: each envelope's signature at the time it was issued
    /// (the completion's and verdict's still valid at <paramref name="now"/>), each step signed by the
    /// party it belongs to and naming the previous one, steps in an order the lifecycle allows and
    /// never older than the step before, the answers to the offer and to the acceptance made before
    /// those expired; then where the order stands at <paramref name="now"/>.
    /// </summary>
    /// <exception cref="EnvelopeRejectedException">Any check fails; the message says which.</exception>
    public static OrderTrace Trace(Receipt chain, DateTimeOffset now)
    {
        if (chain?.Offer is null)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "an order needs its offer");
        }

        var offer = CheckOffer(SignedEnvelopes.Verify(chain.Offer, EnvelopeKinds.OrderOffer, IssuedAt(chain.Offer)));
        var (buyer, seller) = (offer.Buyer, offer.Seller);
        var lastHash = HashOf(chain.Offer);
        var lastAt = IssuedAt(chain.Offer);
        var steps = chain.Steps;
        var next = 0;

        OrderTrace Trace(OrderState state, OrderAcceptance? acceptance = null, bool paid = false, OrderFulfilled? fulfilment = null, DateTimeOffset? autoAt = null, DateTimeOffset? answerBy = null, PeerId? endedBy = null, string reason = "", OrderCompletion? completion = null, OrderVerdict? verdict = null) =>
            new(offer, acceptance, state, lastHash, lastAt, paid, fulfilment, autoAt, answerBy, endedBy, reason, completion, verdict);

        if (chain.Acceptance is null)
        {
            if (chain.Completion is not null || chain.Verdict is not null)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "an order cannot end before the seller accepted it");
            }

            if (steps.Count == 0)
            {
                return Trace(now > offer.ExpiresAt ? OrderState.Expired : OrderState.Offered, answerBy: offer.ExpiresAt);
            }

            var (first, body, firstAt) = Progress(steps[0], ref lastHash, ref lastAt, offer);
            if (steps.Count > 1)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "nothing follows a declined or withdrawn offer");
            }

            if (firstAt > offer.ExpiresAt)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Expired, "the offer had expired before it was answered");
            }

            return body.KindCase switch
            {
                OrderProgress.KindOneofCase.Declined when first.Equals(seller) => Trace(OrderState.Declined, endedBy: seller, reason: body.Declined.Reason),
                OrderProgress.KindOneofCase.Cancelled => Trace(OrderState.Cancelled, endedBy: first, reason: body.Cancelled.Reason),
                OrderProgress.KindOneofCase.Declined => throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "only the seller can decline an offer"),
                _ => throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"an offer is answered by an acceptance, a decline or a cancellation, not \"{Name(body.KindCase)}\""),
            };
        }

        var acceptanceAt = IssuedAt(chain.Acceptance);
        var acceptance = CheckAcceptance(SignedEnvelopes.Verify(chain.Acceptance, EnvelopeKinds.OrderAcceptance, acceptanceAt, seller), offer);
        if (acceptanceAt > offer.ExpiresAt)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Expired, "the offer had expired before the seller accepted it");
        }

        Advance(ref lastAt, acceptanceAt);
        lastHash = HashOf(chain.Acceptance);
        var answerBy = DateTimeOffset.FromUnixTimeMilliseconds(EnvelopePayload.Parser.ParseFrom(chain.Acceptance.Payload).ExpiresAtMs);
        var autoDays = acceptance.AutoCompleteDays == 0 ? DefaultAutoCompleteDays : acceptance.AutoCompleteDays;
        var state = OrderState.Accepted;
        var paid = false;
        OrderFulfilled? fulfilment = null;
        DateTimeOffset? autoAt = null;
        PeerId? endedBy = null;
        var reason = string.Empty;
        for (; next < steps.Count; next++)
        {
            if (state is OrderState.Cancelled)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "nothing follows a cancellation");
            }

            var (party, body, at) = Progress(steps[next], ref lastHash, ref lastAt, offer);
            if (state == OrderState.Accepted && at > answerBy)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Expired, "the acceptance had lapsed before the next step");
            }

            if (autoAt is { } deadline && at > deadline)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Expired, "the order had completed itself (its deadline after fulfilment passed) before this step");
            }

            switch (body.KindCase)
            {
                case OrderProgress.KindOneofCase.Paid when party.Equals(buyer) && state is OrderState.Accepted:
                    (state, paid) = (OrderState.Paid, true);
                    break;
                case OrderProgress.KindOneofCase.Fulfilled when party.Equals(seller) && state is OrderState.Accepted or OrderState.Paid:
                    (state, fulfilment, autoAt) = (OrderState.Fulfilled, body.Fulfilled, at + TimeSpan.FromDays(autoDays));
                    break;
                case OrderProgress.KindOneofCase.Cancelled when state is OrderState.Accepted or OrderState.Paid:
                    (state, endedBy, reason) = (OrderState.Cancelled, party, body.Cancelled.Reason);
                    break;
                case OrderProgress.KindOneofCase.Disputed when offer.Offer.Mediator.Length > 0 && state is OrderState.Accepted or OrderState.Paid or OrderState.Fulfilled:
                    (state, endedBy, reason, autoAt) = (OrderState.Disputed, party, body.Disputed.Reason, null);
                    break;
                default:
                    throw new EnvelopeRejectedException(EnvelopeFault.Malformed, Misplaced(body.KindCase, party.Equals(buyer) ? "buyer" : "seller", state, offer));
            }
        }

        if (chain.Completion is not null && chain.Verdict is not null)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "an order ends with the buyer's completion or the mediator's verdict, not both");
        }

        if (chain.Completion is not null)
        {
            if (state is OrderState.Cancelled)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "a cancelled order cannot be completed");
            }

            var verified = SignedEnvelopes.Verify(chain.Completion, EnvelopeKinds.OrderCompletion, now, buyer);
            var completion = CheckCompletion(verified, lastHash, offer);
            var at = DateTimeOffset.FromUnixTimeMilliseconds(verified.Payload.IssuedAtMs);
            if (state == OrderState.Accepted && at > answerBy)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Expired, "the acceptance had expired before the buyer completed the order");
            }

            Advance(ref lastAt, at);
            lastHash = HashOf(chain.Completion);
            return Trace(OrderState.Completed, acceptance, paid, fulfilment, autoAt, answerBy, buyer, reason, completion);
        }

        if (chain.Verdict is not null)
        {
            if (state != OrderState.Disputed)
            {
                throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "a verdict needs a dispute before it");
            }

            var verified = SignedEnvelopes.Verify(chain.Verdict, EnvelopeKinds.OrderVerdict, now, PeerId.Parse(offer.Offer.Mediator));
            var verdict = CheckVerdict(verified, lastHash, offer);
            Advance(ref lastAt, DateTimeOffset.FromUnixTimeMilliseconds(verified.Payload.IssuedAtMs));
            lastHash = HashOf(chain.Verdict);
            return Trace(OrderState.Decided, acceptance, paid, fulfilment, null, answerBy, PeerId.Parse(offer.Offer.Mediator), reason, verdict: verdict);
        }

        if (state == OrderState.Accepted && now > answerBy)
        {
            state = OrderState.Lapsed;
        }
        else if (state == OrderState.Fulfilled && autoAt is { } due && now >= due)
        {
            state = OrderState.AutoCompleted;
        }

        return Trace(state, acceptance, paid, fulfilment, autoAt, answerBy, endedBy, reason);
    }

    private static (PeerId Party, OrderProgress Body, DateTimeOffset At) Progress(SignedEnvelope envelope, ref byte[] lastHash, ref DateTimeOffset lastAt, VerifiedOffer offer)
    {
        var at = IssuedAt(envelope);
        var verified = SignedEnvelopes.Verify(envelope, EnvelopeKinds.OrderProgress, at);
        if (!verified.Signer.Equals(offer.Buyer) && !verified.Signer.Equals(offer.Seller))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "an order step is signed by someone who is not a party to the order");
        }

        var body = verified.Body(OrderProgress.Parser);
        if (body.OrderId != offer.Offer.OrderId || !CryptographicOperations.FixedTimeEquals(body.PreviousHash.Span, lastHash))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"the \"{Name(body.KindCase)}\" step names another step than the one before it");
        }

        if (TextOf(body).Any(t => t.Length > MaxText))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"a text of the \"{Name(body.KindCase)}\" step is longer than {MaxText} characters");
        }

        if (body.KindCase == OrderProgress.KindOneofCase.None)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "an order step says nothing");
        }

        Advance(ref lastAt, at);
        lastHash = HashOf(envelope);
        return (verified.Signer, body, at);
    }

    private static IEnumerable<string> TextOf(OrderProgress body) => body.KindCase switch
    {
        OrderProgress.KindOneofCase.Declined => [body.Declined.Reason],
        OrderProgress.KindOneofCase.Paid => [body.Paid.Note],
        OrderProgress.KindOneofCase.Fulfilled => [body.Fulfilled.Carrier, body.Fulfilled.Tracking, body.Fulfilled.ContentId, body.Fulfilled.Place, body.Fulfilled.Note],
        OrderProgress.KindOneofCase.Cancelled => [body.Cancelled.Reason],
        OrderProgress.KindOneofCase.Disputed => [body.Disputed.Reason],
        _ => [],
    };

    /// <summary>The step's name as people say it.</summary>
    public static string Name(OrderProgress.KindOneofCase kind) => kind switch
    {
        OrderProgress.KindOneofCase.Declined => "declined",
        OrderProgress.KindOneofCase.Paid => "paid",
        OrderProgress.KindOneofCase.Fulfilled => "fulfilled",
        OrderProgress.KindOneofCase.Cancelled => "cancelled",
        OrderProgress.KindOneofCase.Disputed => "disputed",
        _ => "empty",
    };

    private static string Misplaced(OrderProgress.KindOneofCase kind, string party, OrderState state, VerifiedOffer offer) => kind switch
    {
        OrderProgress.KindOneofCase.Declined => "a decline answers an offer; this order was already accepted",
        OrderProgress.KindOneofCase.Paid when party != "buyer" => "only the buyer marks an order paid",
        OrderProgress.KindOneofCase.Fulfilled when party != "seller" => "only the seller marks an order fulfilled",
        OrderProgress.KindOneofCase.Disputed when offer.Offer.Mediator.Length == 0 => "this order names no mediator, so it cannot be disputed",
        OrderProgress.KindOneofCase.Cancelled when state is OrderState.Fulfilled or OrderState.Disputed => "an order can be cancelled only before it is fulfilled",
        _ => $"a \"{Name(kind)}\" step cannot follow an order that is {state.ToString().ToLowerInvariant()}",
    };

    private static void Advance(ref DateTimeOffset lastAt, DateTimeOffset at)
    {
        if (at + ClockSkew < lastAt)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "a step is dated before the step it follows");
        }

        if (at > lastAt)
        {
            lastAt = at;
        }
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

        if (offer.Mediator.Length > 0 && (!PeerId.TryParse(offer.Mediator, out var mediator, out _) || mediator.Equals(seller) || mediator.Equals(verified.Signer)))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "offer names a mediator that is not a valid peer id, or is the buyer or the seller");
        }

        return new VerifiedOffer(verified.Envelope, offer, verified.Signer, seller, DateTimeOffset.FromUnixTimeMilliseconds(verified.Payload.ExpiresAtMs));
    }

    private static OrderAcceptance CheckAcceptance(VerifiedEnvelope verified, VerifiedOffer offer)
    {
        var acceptance = verified.Body(OrderAcceptance.Parser);
        if (acceptance.OrderId != offer.Offer.OrderId || !CryptographicOperations.FixedTimeEquals(acceptance.OfferHash.Span, HashOf(offer.Envelope)))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "the acceptance names another offer");
        }

        if (acceptance.PaymentInstructions.Length > MaxText || acceptance.AutoCompleteDays > 365)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"the acceptance's payment instructions are longer than {MaxText} characters or its auto-completion is over 365 days");
        }

        return acceptance;
    }

    private static OrderCompletion CheckCompletion(VerifiedEnvelope verified, byte[] previousHash, VerifiedOffer offer)
    {
        var completion = verified.Body(OrderCompletion.Parser);
        if (completion.OrderId != offer.Offer.OrderId || !CryptographicOperations.FixedTimeEquals(completion.AcceptanceHash.Span, previousHash))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "the completion names another step than the one before it");
        }

        return completion;
    }

    private static OrderVerdict CheckVerdict(VerifiedEnvelope verified, byte[] disputeHash, VerifiedOffer offer)
    {
        var verdict = verified.Body(OrderVerdict.Parser);
        if (verdict.OrderId != offer.Offer.OrderId || !CryptographicOperations.FixedTimeEquals(verdict.DisputeHash.Span, disputeHash))
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "the verdict names another dispute");
        }

        var valid = verdict.Outcome switch
        {
            "buyer" or "seller" => verdict.BuyerSharePercent == 0,
            "split" => verdict.BuyerSharePercent is >= 1 and <= 99,
            _ => false,
        };
        if (!valid || verdict.Note.Length > MaxText)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, "a verdict is for the buyer, for the seller, or a split with the buyer's share from 1 to 99 percent, with a note of at most 500 characters");
        }

        return verdict;
    }
}
