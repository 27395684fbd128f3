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
}
