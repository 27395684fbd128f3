using Google.Protobuf;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Tests;

public sealed class ReceiptTests : IDisposable
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

    private OrderOffer Offer() => new()
    {
        OrderId = ListingRules.NewListingId(),
        Seller = _seller.Id.ToString(),
        ListingId = ListingRules.NewListingId(),
        ListingVersion = 3,
        UnitPrice = ListingRules.ParseMoney("19.90", "EUR"),
        Quantity = 2,
        Title = "Wool scarf",
    };

    private Receipt Receipt(PeerIdentity? acceptedBy = null, PeerIdentity? completedBy = null, DateTimeOffset? completedAt = null)
    {
        var offerBody = Offer();
        var offer = Receipts.SignOffer(_buyer, offerBody, Now);
        var acceptance = Receipts.SignAcceptance(acceptedBy ?? _seller, offer, offerBody.OrderId, Now.AddHours(1));
        var completion = Receipts.SignCompletion(completedBy ?? _buyer, acceptance, offerBody.OrderId, satisfied: true, completedAt ?? Now.AddDays(2));
        return new Receipt { Offer = offer, Acceptance = acceptance, Completion = completion };
    }

    [Fact]
    public void AReceiptSignedByBothPartiesVerifiesWithItsBytesAlone()
    {
        var bytes = Receipt().ToByteArray();

        var verified = Receipts.Verify(Protocol.V1.Receipt.Parser.ParseFrom(bytes), Now.AddDays(3));

        Assert.Equal(_buyer.Id, verified.Buyer);
        Assert.Equal(_seller.Id, verified.Seller);
        Assert.True(verified.Satisfied);
        Assert.Equal(2u, verified.Offer.Quantity);
        Assert.Equal(Now.AddDays(2), verified.CompletedAt);
    }

    [Fact]
    public void AnAcceptanceByAnyoneButTheSellerIsRefused()
    {
        var ex = Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(Receipt(acceptedBy: _stranger), Now.AddDays(3)));
        Assert.Equal(EnvelopeFault.WrongSigner, ex.Fault);
    }

    [Fact]
    public void ACompletionByAnyoneButTheBuyerIsRefused()
    {
        var ex = Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(Receipt(completedBy: _seller), Now.AddDays(3)));
        Assert.Equal(EnvelopeFault.WrongSigner, ex.Fault);
    }

    [Fact]
    public void StepsFromDifferentOrdersDoNotMakeAReceipt()
    {
        var first = Receipt();
        var second = Receipt();
        var mixed = new Receipt { Offer = first.Offer, Acceptance = second.Acceptance, Completion = second.Completion };

        var ex = Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(mixed, Now.AddDays(3)));
        Assert.Contains("another offer", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AChangedPriceBreaksTheBuyersSignature()
    {
        var receipt = Receipt();
        var payload = EnvelopePayload.Parser.ParseFrom(receipt.Offer.Payload);
        var body = OrderOffer.Parser.ParseFrom(payload.Body);
        body.UnitPrice = ListingRules.ParseMoney("1.00", "EUR");
        payload.Body = body.ToByteString();
        receipt.Offer.Payload = payload.ToByteString();

        var ex = Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(receipt, Now.AddDays(3)));
        Assert.Equal(EnvelopeFault.BadSignature, ex.Fault);
    }

    [Fact]
    public void AReceiptWithAStepMissingIsRefused()
    {
        var receipt = Receipt();
        receipt.Completion = null;

        Assert.Equal(EnvelopeFault.Malformed, Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(receipt, Now.AddDays(3))).Fault);
    }

    [Fact]
    public void ACompletionAfterTheAcceptanceExpiredIsRefused()
    {
        var ex = Assert.Throws<EnvelopeRejectedException>(() => Receipts.Verify(Receipt(completedAt: Now.AddDays(120)), Now.AddDays(121)));
        Assert.Equal(EnvelopeFault.Expired, ex.Fault);
    }
}
