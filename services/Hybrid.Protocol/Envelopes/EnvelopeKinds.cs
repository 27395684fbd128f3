namespace Hybrid.Protocol.Envelopes;

/// <summary>The kinds of signed envelope. A signature made for one kind is never accepted as another.</summary>
public static class EnvelopeKinds
{
    /// <summary>A peer's public profile (<c>PeerProfile</c>).</summary>
    public const string Profile = "hybrid.profile.v1";

    /// <summary>A peer's answer to a supernode's session challenge (<c>SessionProof</c>).</summary>
    public const string SessionProof = "hybrid.session.v1";

    /// <summary>A listing offered by its seller (<c>Listing</c>).</summary>
    public const string Listing = "hybrid.listing.v1";

    /// <summary>A seller taking its listing down (<c>ListingWithdrawal</c>).</summary>
    public const string Withdrawal = "hybrid.withdraw.v1";

    /// <summary>A chat message to one peer (<c>ChatMessage</c>).</summary>
    public const string Chat = "hybrid.chat.v1";

    /// <summary>A buyer's offer for a listing (<c>OrderOffer</c>).</summary>
    public const string OrderOffer = "hybrid.order.offer.v1";

    /// <summary>A seller's acceptance of an offer (<c>OrderAcceptance</c>).</summary>
    public const string OrderAcceptance = "hybrid.order.accept.v1";

    /// <summary>A buyer's confirmation that the order was fulfilled (<c>OrderCompletion</c>).</summary>
    public const string OrderCompletion = "hybrid.order.complete.v1";

    /// <summary>A step between offer and end: declined, paid, fulfilled, cancelled, disputed (<c>OrderProgress</c>).</summary>
    public const string OrderProgress = "hybrid.order.progress.v1";

    /// <summary>A mediator's decision on a disputed order (<c>OrderVerdict</c>).</summary>
    public const string OrderVerdict = "hybrid.order.verdict.v1";

    /// <summary>A dialer's request for a relayed link (<c>RelayRequest</c>).</summary>
    public const string RelayRequest = "hybrid.relay.v1";

    /// <summary>A review of the other party of a completed order (<c>Review</c>).</summary>
    public const string Review = "hybrid.review.v1";

    /// <summary>The reviewed party's reply to a review (<c>ReviewReply</c>).</summary>
    public const string ReviewReply = "hybrid.review.reply.v1";

    /// <summary>A cluster's answer to a federation hello (<c>FederationHelloAnswer</c>), signed with its federation key.</summary>
    public const string FederationHello = "hybrid.federation.hello.v1";
}
