using Google.Protobuf;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Tests;

/// <summary>
/// Every path of an order's chain through <see cref="Receipts.Trace"/> and <see cref="Receipts.Verify"/>:
/// what each party may sign when, what each path ends in, which ends make a receipt for reviews, and
/// the reason a forged or misplaced step is refused with.
/// </summary>
public sealed class OrderLifecycleTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private readonly PeerIdentity _buyer = PeerIdentity.Generate();
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly PeerIdentity _mediator = PeerIdentity.Generate();
    private readonly PeerIdentity _stranger = PeerIdentity.Generate();

    public void Dispose()
    {
        _buyer.Dispose();
        _seller.Dispose();
        _mediator.Dispose();
        _stranger.Dispose();
    }

    private Receipt Offered(bool withMediator = true)
    {
        var body = new OrderOffer
        {
            OrderId = ListingRules.NewListingId(),
            Seller = _seller.Id.ToString(),
            ListingId = ListingRules.NewListingId(),
            ListingVersion = 1,
            UnitPrice = ListingRules.ParseMoney("120.00", "EUR"),
            Quantity = 1,
            Title = "Road bike, 56 cm frame",
            Mediator = withMediator ? _mediator.Id.ToString() : string.Empty,
        };
        return new Receipt { Offer = Receipts.SignOffer(_buyer, body, Now) };
    }

    private static string OrderId(Receipt chain) => Receipts.Trace(chain, Now).Offer.Offer.OrderId;

    private Receipt Accepted(bool withMediator = true, uint autoCompleteDays = 0)
    {
        var chain = Offered(withMediator);
        chain.Acceptance = Receipts.SignAcceptance(_seller, chain.Offer, OrderId(chain), Now.AddHours(1), "IBAN DE00 1234, reference = order id", autoCompleteDays);
        return chain;
    }

    private static Receipt Step(Receipt chain, PeerIdentity by, OrderProgress step, DateTimeOffset at)
    {
        step.OrderId = OrderId(chain);
        chain.Steps.Add(Receipts.SignProgress(by, Receipts.LastStep(chain), step, at));
        return chain;
    }

    private static OrderProgress Paid() => new() { Paid = new OrderPaid { Note = "transfer 4411" } };

    private static OrderProgress Shipped() => new() { Fulfilled = new OrderFulfilled { Carrier = "DHL", Tracking = "JJD000390007" } };

    private static OrderProgress Cancelled(string why) => new() { Cancelled = new OrderCancelled { Reason = why } };

    private static OrderProgress Disputed(string why) => new() { Disputed = new OrderDisputed { Reason = why } };

    private static Receipt Complete(Receipt chain, PeerIdentity by, bool satisfied, DateTimeOffset at)
    {
        chain.Completion = Receipts.SignCompletion(by, Receipts.LastStep(chain), OrderId(chain), satisfied, at);
        return chain;
    }

    private static Receipt Decide(Receipt chain, PeerIdentity by, string outcome, uint share, DateTimeOffset at)
    {
        chain.Verdict = Receipts.SignVerdict(by, Receipts.LastStep(chain), new OrderVerdict { OrderId = OrderId(chain), Outcome = outcome, BuyerSharePercent = share, Note = "photos show the damage" }, at);
        return chain;
    }

    private static string Refusal(Receipt chain, DateTimeOffset now) => Assert.Throws<EnvelopeRejectedException>(() => Receipts.Trace(chain, now)).Message;

    [Fact]
    public void PaidShippedAndCompletedIsAReceiptThatVerifiesFromItsBytesAlone()
    {
        var chain = Complete(Step(Step(Accepted(), _buyer, Paid(), Now.AddHours(2)), _seller, Shipped(), Now.AddDays(1)), _buyer, satisfied: false, Now.AddDays(3));

        var verified = Receipts.Verify(Receipt.Parser.ParseFrom(chain.ToByteArray()), Now.AddDays(4));

        Assert.Equal((OrderState.Completed, false), (verified.State, verified.Satisfied));
        var trace = Receipts.Trace(chain, Now.AddDays(4));
        Assert.True(trace.Paid);
        Assert.Equal("JJD000390007", trace.Fulfilment!.Tracking);
        Assert.Equal("IBAN DE00 1234, reference = order id", trace.Acceptance!.PaymentInstructions);
    }

    [Fact]
    public void AFulfilledOrderNobodyAnswersCompletesItselfAtTheDeadlineTheAcceptanceSet()
    {
        var chain = Step(Accepted(autoCompleteDays: 7), _seller, Shipped(), Now.AddDays(1));

        Assert.Equal(OrderState.Fulfilled, Receipts.Trace(chain, Now.AddDays(7)).State);
        Assert.Equal(Now.AddDays(8), Receipts.Trace(chain, Now.AddDays(7)).AutoCompletesAt);
        Assert.Contains("fulfilled", Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(chain, Now.AddDays(7))).Message, StringComparison.Ordinal);
        var verified = Receipts.Verify(chain, Now.AddDays(8));
        Assert.Equal((OrderState.AutoCompleted, Now.AddDays(8)), (verified.State, verified.CompletedAt));

        // After the deadline the buyer can no longer dispute it.
        Step(chain, _buyer, Disputed("never arrived"), Now.AddDays(9));
        Assert.Contains("completed itself", Refusal(chain, Now.AddDays(9)), StringComparison.Ordinal);
    }

    [Fact]
    public void TheSellerDeclinesAnOfferWithAReasonAndNothingFollows()
    {
        var chain = Step(Offered(), _seller, new OrderProgress { Declined = new OrderDeclined { Reason = "sold at the market this morning" } }, Now.AddHours(1));

        var trace = Receipts.Trace(chain, Now.AddHours(2));
        Assert.Equal((OrderState.Declined, "sold at the market this morning", _seller.Id), (trace.State, trace.Reason, trace.EndedBy));
        Assert.True(trace.IsFinal);
        Assert.Contains("declined", Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(chain, Now.AddHours(2))).Message, StringComparison.Ordinal);

        var byBuyer = Step(Offered(), _buyer, new OrderProgress { Declined = new OrderDeclined { Reason = "x" } }, Now.AddHours(1));
        Assert.Contains("only the seller can decline", Refusal(byBuyer, Now.AddHours(2)), StringComparison.Ordinal);
    }

    [Fact]
    public void EitherSideCancelsBeforeFulfilmentButNotAfter()
    {
        var beforePaid = Step(Accepted(), _seller, Cancelled("out of stock after all"), Now.AddHours(2));
        Assert.Equal((OrderState.Cancelled, _seller.Id), (Receipts.Trace(beforePaid, Now.AddHours(3)).State, Receipts.Trace(beforePaid, Now.AddHours(3)).EndedBy));

        var afterPaid = Step(Step(Accepted(), _buyer, Paid(), Now.AddHours(2)), _buyer, Cancelled("seller stopped answering"), Now.AddDays(2));
        var trace = Receipts.Trace(afterPaid, Now.AddDays(3));
        Assert.Equal((OrderState.Cancelled, true), (trace.State, trace.Paid));

        var afterShipping = Step(Step(Accepted(), _seller, Shipped(), Now.AddHours(2)), _buyer, Cancelled("changed my mind"), Now.AddDays(1));
        Assert.Contains("only before it is fulfilled", Refusal(afterShipping, Now.AddDays(2)), StringComparison.Ordinal);

        var completedAfterCancel = Complete(Step(Accepted(), _seller, Cancelled("x"), Now.AddHours(2)), _buyer, true, Now.AddHours(3));
        Assert.Contains("cancelled order cannot be completed", Refusal(completedAfterCancel, Now.AddHours(4)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("buyer", 0u, false)]
    [InlineData("seller", 0u, true)]
    [InlineData("split", 40u, false)]
    public void ADisputeEndsInTheNamedMediatorsVerdictWhichMakesTheReceipt(string outcome, uint share, bool satisfied)
    {
        var chain = Decide(Step(Step(Accepted(), _seller, Shipped(), Now.AddDays(1)), _buyer, Disputed("arrived with a bent wheel"), Now.AddDays(2)), _mediator, outcome, share, Now.AddDays(5));

        var verified = Receipts.Verify(Receipt.Parser.ParseFrom(chain.ToByteArray()), Now.AddDays(6));

        Assert.Equal((OrderState.Decided, outcome, share, satisfied), (verified.State, verified.Verdict!.Outcome, verified.Verdict.BuyerSharePercent, verified.Satisfied));
    }

    [Fact]
    public void AVerdictBySomeoneElseOrWithoutADisputeOrOutOfRangeIsRefused()
    {
        Receipt Disputed_() => Step(Accepted(), _seller, Disputed("buyer never paid"), Now.AddDays(3));

        Assert.Contains("is signed by", Refusal(Decide(Disputed_(), _stranger, "seller", 0, Now.AddDays(4)), Now.AddDays(5)), StringComparison.Ordinal);
        Assert.Contains("is signed by", Refusal(Decide(Disputed_(), _seller, "seller", 0, Now.AddDays(4)), Now.AddDays(5)), StringComparison.Ordinal);
        Assert.Contains("needs a dispute", Refusal(Decide(Step(Accepted(), _buyer, Paid(), Now.AddHours(2)), _mediator, "buyer", 0, Now.AddDays(1)), Now.AddDays(2)), StringComparison.Ordinal);
        Assert.Contains("1 to 99 percent", Refusal(Decide(Disputed_(), _mediator, "split", 100, Now.AddDays(4)), Now.AddDays(5)), StringComparison.Ordinal);
        Assert.Contains("1 to 99 percent", Refusal(Decide(Disputed_(), _mediator, "everyone", 0, Now.AddDays(4)), Now.AddDays(5)), StringComparison.Ordinal);
    }

    [Fact]
    public void AnOrderWithoutAMediatorCannotBeDisputed()
    {
        var chain = Step(Accepted(withMediator: false), _buyer, Disputed("late"), Now.AddDays(1));

        Assert.Contains("names no mediator", Refusal(chain, Now.AddDays(2)), StringComparison.Ordinal);
    }

    [Fact]
    public void StepsByTheWrongPartyOrAStrangerAreRefusedWithTheReason()
    {
        Assert.Contains("only the buyer marks an order paid", Refusal(Step(Accepted(), _seller, Paid(), Now.AddHours(2)), Now.AddDays(1)), StringComparison.Ordinal);
        Assert.Contains("only the seller marks an order fulfilled", Refusal(Step(Accepted(), _buyer, Shipped(), Now.AddHours(2)), Now.AddDays(1)), StringComparison.Ordinal);
        Assert.Contains("not a party", Refusal(Step(Accepted(), _stranger, Cancelled("x"), Now.AddHours(2)), Now.AddDays(1)), StringComparison.Ordinal);
        Assert.Contains("is signed by", Refusal(Complete(Accepted(), _seller, true, Now.AddDays(1)), Now.AddDays(2)), StringComparison.Ordinal);
    }

    [Fact]
    public void AStepNamingAnotherStepOrOutOfOrderIsRefused()
    {
        // Paid twice; fulfilled, then paid.
        Assert.Contains("cannot follow an order that is paid", Refusal(Step(Step(Accepted(), _buyer, Paid(), Now.AddHours(2)), _buyer, Paid(), Now.AddHours(3)), Now.AddDays(1)), StringComparison.Ordinal);
        Assert.Contains("cannot follow an order that is fulfilled", Refusal(Step(Step(Accepted(), _seller, Shipped(), Now.AddHours(2)), _buyer, Paid(), Now.AddHours(3)), Now.AddDays(1)), StringComparison.Ordinal);

        // A step that names the offer instead of the acceptance before it.
        var chain = Accepted();
        var skipped = Paid();
        skipped.OrderId = OrderId(chain);
        chain.Steps.Add(Receipts.SignProgress(_buyer, chain.Offer, skipped, Now.AddHours(2)));
        Assert.Contains("names another step", Refusal(chain, Now.AddDays(1)), StringComparison.Ordinal);

        // Steps swapped: each then names the wrong predecessor.
        var swapped = Step(Step(Accepted(), _buyer, Paid(), Now.AddHours(2)), _seller, Shipped(), Now.AddHours(3));
        (swapped.Steps[0], swapped.Steps[1]) = (swapped.Steps[1], swapped.Steps[0]);
        Assert.Contains("names another step", Refusal(swapped, Now.AddDays(1)), StringComparison.Ordinal);

        // A completion that names the acceptance although a step came after it.
        var stale = Step(Accepted(), _seller, Shipped(), Now.AddHours(2));
        stale.Completion = Receipts.SignCompletion(_buyer, stale.Acceptance, OrderId(stale), true, Now.AddDays(1));
        Assert.Contains("completion names another step", Refusal(stale, Now.AddDays(2)), StringComparison.Ordinal);

        // Dated before the step it follows (beyond clock skew).
        Assert.Contains("dated before", Refusal(Step(Accepted(), _buyer, Paid(), Now.AddMinutes(10)), Now.AddDays(1)), StringComparison.Ordinal);
    }

    [Fact]
    public void DeadlinesAnOfferExpiresAndAnUnansweredAcceptanceLapses()
    {
        var offered = Offered();
        Assert.Equal(OrderState.Offered, Receipts.Trace(offered, Now.AddDays(29)).State);
        Assert.Equal(OrderState.Expired, Receipts.Trace(offered, Now + Receipts.OfferLifetime + TimeSpan.FromMinutes(1)).State);

        var accepted = Accepted();
        Assert.Equal(OrderState.Accepted, Receipts.Trace(accepted, Now.AddDays(30)).State);
        var lapsed = Receipts.Trace(accepted, Now.AddHours(1) + Receipts.AcceptanceLifetime + TimeSpan.FromMinutes(1));
        Assert.Equal(OrderState.Lapsed, lapsed.State);
        Assert.True(lapsed.IsFinal);

        var lateAnswer = Step(Accepted(), _buyer, Paid(), Now.AddHours(1) + Receipts.AcceptanceLifetime + TimeSpan.FromHours(1));
        Assert.Contains("lapsed", Refusal(lateAnswer, Now.AddDays(200)), StringComparison.Ordinal);
    }

    [Fact]
    public void AForgedSignatureAnywhereInTheChainIsRefused()
    {
        var chain = Step(Step(Accepted(), _buyer, Paid(), Now.AddHours(2)), _seller, Shipped(), Now.AddDays(1));
        var tampered = chain.Steps[0].Clone();
        var payload = tampered.Payload.ToByteArray();
        payload[^1] ^= 1;
        tampered.Payload = ByteString.CopyFrom(payload);
        chain.Steps[0] = tampered;

        Assert.Throws<EnvelopeRejectedException>(() => Receipts.Trace(chain, Now.AddDays(2)));
    }
}
