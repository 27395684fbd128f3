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
