using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;

namespace Hybrid.Supernode.Api;

/// <summary>A listing that fails the listing rules; the message says which rule, for a person to fix.</summary>
public sealed class ListingRefusedException(string message) : Exception(message)
{
    public ListingRefusedException()
        : this("the listing breaks a listing rule")
    {
    }

    public ListingRefusedException(string message, Exception innerException)
        : this(message + ": " + innerException?.Message)
    {
    }
}

/// <summary>A listing that passed every check, ready for its shard.</summary>
/// <param name="Stored">What the shard stores.</param>
/// <param name="Verified">The checked envelope (its signer is the seller).</param>
public sealed record CheckedListing(StoredListing Stored, VerifiedEnvelope Verified);

/// <summary>
/// The checks a listing passes before any shard takes it, the same whoever brings it: a seller
/// publishing, or another cluster of the federation (trusted for nothing, so checked alike).
/// </summary>
public static class ListingIntake
{
    /// <summary>Verifies the seller's signature and the listing rules.</summary>
    /// <exception cref="EnvelopeRejectedException">The envelope does not verify.</exception>
    /// <exception cref="ListingRefusedException">The listing breaks a rule.</exception>
    public static CheckedListing Check(SignedEnvelope envelope, DateTimeOffset now)
    {
        var verified = SignedEnvelopes.Verify(envelope, EnvelopeKinds.Listing, now);
        var listing = verified.Body(Listing.Parser);
        var expires = DateTimeOffset.FromUnixTimeMilliseconds(verified.Payload.ExpiresAtMs);
        if (ListingRules.Check(listing, expires, now) is { } problem)
        {
            throw new ListingRefusedException(problem);
        }

        if (listing.CreatedMs > verified.Payload.IssuedAtMs)
        {
            throw new ListingRefusedException("created_ms is after the envelope's issue time: a listing cannot be created after it was signed");
        }

        var stored = new StoredListing(listing.ListingId, verified.Signer.ToString(), verified.Version, verified.Payload.ExpiresAtMs, false, envelope.ToByteArray());
        return new CheckedListing(stored, verified);
    }

    /// <summary>
    /// Checks a withdrawn listing as another cluster sends it: the listing and its withdrawal are
    /// each signed by the same seller (as of when each was signed: either may have expired since),
    /// the withdrawal names the listing, and its version is newer than the listing's.
    /// </summary>
    /// <exception cref="EnvelopeRejectedException">Either envelope does not verify.</exception>
    /// <exception cref="ListingRefusedException">They do not belong together.</exception>
    public static CheckedListing CheckWithdrawn(SignedEnvelope listingEnvelope, SignedEnvelope withdrawalEnvelope, DateTimeOffset now)
    {
        var verified = VerifyAsSigned(listingEnvelope, EnvelopeKinds.Listing, now);
        var listing = verified.Body(Listing.Parser);
        var withdrawn = VerifyAsSigned(withdrawalEnvelope, EnvelopeKinds.Withdrawal, now);
        if (withdrawn.Signer != verified.Signer)
        {
            throw new ListingRefusedException($"the withdrawal of listing {listing.ListingId} is not signed by its seller");
        }

        if (withdrawn.Body(ListingWithdrawal.Parser).ListingId != listing.ListingId)
        {
            throw new ListingRefusedException($"the withdrawal sent with listing {listing.ListingId} is for another listing");
        }

        if (withdrawn.Version <= verified.Version)
        {
            throw new ListingRefusedException($"the withdrawal of listing {listing.ListingId} (version {withdrawn.Version}) is not newer than the listing (version {verified.Version})");
        }

        var stored = new StoredListing(listing.ListingId, verified.Signer.ToString(), withdrawn.Version, verified.Payload.ExpiresAtMs, true, listingEnvelope.ToByteArray(), withdrawalEnvelope.ToByteArray());
        return new CheckedListing(stored, verified);
    }

    /// <summary>
    /// Verifies an envelope as of the time it says it was signed (its signature and kind; not whether
    /// it has expired since); one dated after <paramref name="now"/> is checked as of now, and refused.
    /// </summary>
    private static VerifiedEnvelope VerifyAsSigned(SignedEnvelope envelope, string kind, DateTimeOffset now)
    {
        var issued = SignedEnvelopes.IssuedAt(envelope);
        return SignedEnvelopes.Verify(envelope, kind, issued < now ? issued : now);
    }
}
