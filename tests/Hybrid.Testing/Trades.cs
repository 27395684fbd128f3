using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;

namespace Hybrid.Testing;

/// <summary>Completed orders and reviews of them, signed by real key pairs, for reputation tests and load.</summary>
public static class Trades
{
    /// <summary>A completed order: buyer's offer, seller's acceptance, buyer's completion.</summary>
    public static Receipt Complete(PeerIdentity buyer, PeerIdentity seller, decimal price = 20m, DateTimeOffset? at = null)
    {
        ArgumentNullException.ThrowIfNull(buyer);
        ArgumentNullException.ThrowIfNull(seller);
        var now = at ?? DateTimeOffset.UtcNow;
        var offerBody = new OrderOffer
        {
            OrderId = ListingRules.NewListingId(),
            Seller = seller.Id.ToString(),
            ListingId = ListingRules.NewListingId(),
            ListingVersion = 1,
            UnitPrice = ListingRules.ParseMoney(price.ToString(System.Globalization.CultureInfo.InvariantCulture), "EUR"),
            Quantity = 1,
            Title = "test goods",
        };
        var offer = Receipts.SignOffer(buyer, offerBody, now);
        var acceptance = Receipts.SignAcceptance(seller, offer, offerBody.OrderId, now);
        var completion = Receipts.SignCompletion(buyer, acceptance, offerBody.OrderId, satisfied: true, now);
        return new Receipt { Offer = offer, Acceptance = acceptance, Completion = completion };
    }

    /// <summary><paramref name="reviewer"/>'s signed review of the other party of <paramref name="receipt"/>.</summary>
    public static SignedEnvelope Review(PeerIdentity reviewer, PeerId reviewed, Receipt receipt, uint stars, string text = "", ulong version = 1, DateTimeOffset? at = null)
    {
        ArgumentNullException.ThrowIfNull(reviewer);
        return Reviews.Sign(reviewer, new Review { Receipt = receipt, Reviewed = reviewed.ToString(), Stars = stars, Text = text }, version, at ?? DateTimeOffset.UtcNow);
    }
}
