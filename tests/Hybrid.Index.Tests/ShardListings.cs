using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>Listings as a shard stores them, and queries as the shards see them, for the shard and fan-out tests.</summary>
internal static class ShardListings
{
    /// <summary><paramref name="listing"/> signed by <paramref name="seller"/> at <paramref name="version"/>, live for 30 days.</summary>
    public static StoredListing Stored(PeerIdentity seller, Protocol.V1.Listing listing, ulong version = 1)
    {
        var envelope = ListingFactory.Sign(seller, listing, version);
        return new StoredListing(listing.ListingId, seller.Id.ToString(), version, DateTimeOffset.UtcNow.AddDays(30).ToUnixTimeMilliseconds(), false, envelope.ToByteArray());
    }

    /// <summary>Words only, in relevance order.</summary>
    public static SearchQuery Query(string text) => new(text, null, null, null, null, null, null, null, null, SearchOrder.Relevance);
}
