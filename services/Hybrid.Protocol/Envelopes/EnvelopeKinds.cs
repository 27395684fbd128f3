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
}
