using Google.Protobuf;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Tests;

public sealed class ReviewTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private readonly PeerIdentity _buyer = PeerIdentity.Generate();
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly PeerIdentity _stranger = PeerIdentity.Generate();

    public void Dispose()
    {
        _buyer.Dispose();
        _seller.Dispose();
        _stranger.Dispose();
    }

    private Receipt Receipt()
    {
        var body = new OrderOffer { OrderId = ListingRules.NewListingId(), Seller = _seller.Id.ToString(), ListingId = ListingRules.NewListingId(), ListingVersion = 1, UnitPrice = ListingRules.ParseMoney("5", "EUR"), Quantity = 1 };
        var offer = Receipts.SignOffer(_buyer, body, Now);
        var acceptance = Receipts.SignAcceptance(_seller, offer, body.OrderId, Now);
        return new Receipt { Offer = offer, Acceptance = acceptance, Completion = Receipts.SignCompletion(_buyer, acceptance, body.OrderId, true, Now) };
    }

    private static SignedEnvelope Sign(PeerIdentity reviewer, Receipt? receipt, PeerId reviewed, uint stars = 4, string text = "fine") =>
        Reviews.Sign(reviewer, new Review { Receipt = receipt, Reviewed = reviewed.ToString(), Stars = stars, Text = text }, 1, Now);

    [Fact]
    public void BothPartiesMayReviewEachOtherEachWithItsOwnStableId()
    {
        var receipt = Receipt();

        var byBuyer = Reviews.Verify(Sign(_buyer, receipt, _seller.Id), Now);
        var bySeller = Reviews.Verify(Sign(_seller, receipt, _buyer.Id), Now);

        Assert.Equal((_buyer.Id, _seller.Id), (byBuyer.Reviewer, byBuyer.Reviewed));
        Assert.Equal((_seller.Id, _buyer.Id), (bySeller.Reviewer, bySeller.Reviewed));
        Assert.NotEqual(byBuyer.ReviewId, bySeller.ReviewId);
        Assert.Equal(byBuyer.ReviewId, Reviews.Verify(Sign(_buyer, receipt, _seller.Id, stars: 1, text: "changed my mind"), Now).ReviewId);
    }

    [Fact]
    public void OnlyAReviewOfADecidedOrderSaysWhetherItAcceptsTheVerdictAndEveryReviewSaysHowItsOrderEnded()
    {
        var completed = Receipt();
        var saying = Reviews.Sign(_buyer, new Review { Receipt = completed, Reviewed = _seller.Id.ToString(), Stars = 4, VerdictAccepted = true }, 1, Now);
        Assert.Contains("decided", Assert.Throws<ReviewRejectedException>(() => Reviews.Verify(saying, Now)).Message, StringComparison.Ordinal);
        Assert.Equal("completed", Reviews.Outcome(Reviews.Verify(Sign(_buyer, completed, _seller.Id), Now).Receipt));

        using var mediator = PeerIdentity.Generate();
        var body = new OrderOffer { OrderId = ListingRules.NewListingId(), Seller = _seller.Id.ToString(), ListingId = ListingRules.NewListingId(), ListingVersion = 1, UnitPrice = ListingRules.ParseMoney("5", "EUR"), Quantity = 1, Mediator = mediator.Id.ToString() };
        var decided = new Receipt { Offer = Receipts.SignOffer(_buyer, body, Now) };
        decided.Acceptance = Receipts.SignAcceptance(_seller, decided.Offer, body.OrderId, Now);
        decided.Steps.Add(Receipts.SignProgress(_buyer, decided.Acceptance, new OrderProgress { OrderId = body.OrderId, Disputed = new OrderDisputed { Reason = "never came" } }, Now));
        decided.Verdict = Receipts.SignVerdict(mediator, decided.Steps[0], new OrderVerdict { OrderId = body.OrderId, Outcome = "buyer" }, Now);

        var accepted = Reviews.Verify(Reviews.Sign(_seller, new Review { Receipt = decided, Reviewed = _buyer.Id.ToString(), Stars = 2, VerdictAccepted = false }, 1, Now), Now);

        Assert.False(accepted.Body.VerdictAccepted);
        Assert.Equal("decided by the mediator for the buyer", Reviews.Outcome(accepted.Receipt));
    }

    [Fact]
    public void AReviewWithoutAReceiptIsRefused()
    {
        var ex = Assert.Throws<ReviewRejectedException>(() => Reviews.Verify(Sign(_buyer, null, _seller.Id), Now));
        Assert.Contains("receipt", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AReviewWithAForgedReceiptIsRefused()
    {
        var receipt = Receipt();
        receipt.Acceptance = Receipts.SignAcceptance(_buyer, receipt.Offer, "not the seller", Now);

        var ex = Assert.Throws<ReviewRejectedException>(() => Reviews.Verify(Sign(_buyer, receipt, _seller.Id), Now));
        Assert.Contains("receipt does not verify", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AThirdPartyCannotReviewAnOrder()
    {
        var ex = Assert.Throws<ReviewRejectedException>(() => Reviews.Verify(Sign(_stranger, Receipt(), _seller.Id), Now));
        Assert.Equal(ReviewFault.NotAParty, ex.Fault);
    }

    [Fact]
    public void AReviewRatesTheOtherPartyOnly()
    {
        Assert.Throws<ReviewRejectedException>(() => Reviews.Verify(Sign(_buyer, Receipt(), _buyer.Id), Now));
        Assert.Throws<ReviewRejectedException>(() => Reviews.Verify(Sign(_buyer, Receipt(), _seller.Id, stars: 6), Now));
    }

    [Fact]
    public void AnAlteredReviewIsRefusedAsForged()
    {
        var envelope = Sign(_buyer, Receipt(), _seller.Id, stars: 1);
        var payload = EnvelopePayload.Parser.ParseFrom(envelope.Payload);
        var body = Review.Parser.ParseFrom(payload.Body);
        body.Stars = 5;
        payload.Body = body.ToByteString();
        envelope.Payload = payload.ToByteString();

        Assert.Equal(EnvelopeFault.BadSignature, Assert.Throws<EnvelopeRejectedException>(() => Reviews.Verify(envelope, Now)).Fault);
    }
}
