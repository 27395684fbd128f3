using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>
/// A shard under a trickle of writes refreshes its searcher at a pace, not for every search that
/// follows a write: writes waiting to be searchable share one refresh (one new segment), and a
/// write is searchable once its wait completes.
/// </summary>
public sealed class PacedRefreshTests : IDisposable
{
    private readonly PeerIdentity _seller = PeerIdentity.Generate();

    public void Dispose() => _seller.Dispose();

    [Fact]
    public async Task WritesWaitingTogetherShareOneRefreshAndAreSearchableOnceTheirWaitEnds()
    {
        using var index = new ListingIndex(refreshEvery: TimeSpan.FromMilliseconds(50));
        index.Add(Stored("Copper kettle"));
        await index.VisibleAsync();
        var segments = index.Segments();

        // Written, not yet waited for: searches go on with the reader they have.
        var lamps = Enumerable.Range(0, 20).Select(i => Stored($"Copper lamp {i}")).ToList();
        lamps.ForEach(index.Upsert);
        Assert.Empty(Found(index, "lamp"));

        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(index.VisibleAsync)));
        Assert.Equal(20, Found(index, "lamp").Count);
        Assert.Equal(segments + 1, index.Segments());

        // A removal waits the same way and is gone once its wait ends.
        index.Remove(lamps[0].ListingId);
        await index.VisibleAsync();
        Assert.Equal(19, Found(index, "lamp").Count);
        Assert.True(index.VisibleAsync().IsCompletedSuccessfully, "nothing is pending, so nothing is waited for");
    }

    [Fact]
    public void UnpacedEachSearchSeesEveryEarlierWrite()
    {
        using var index = new ListingIndex();
        Assert.Equal(TimeSpan.Zero, index.RefreshEvery);
        index.Upsert(Stored("Pewter tankard"));
        Assert.Single(Found(index, "tankard"));
    }

    private static List<string> Found(ListingIndex index, string text) =>
        [.. index.Search(new SearchQuery(text, null, null, null, null, null, null, null, null, SearchOrder.Relevance), 50, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).Hits.Select(h => h.ListingId)];

    private StoredListing Stored(string title)
    {
        var listing = ListingFactory.Listing(title);
        var envelope = ListingFactory.Sign(_seller, listing, 1);
        return new StoredListing(listing.ListingId, _seller.Id.ToString(), 1, DateTimeOffset.UtcNow.AddDays(30).ToUnixTimeMilliseconds(), false, envelope.ToByteArray());
    }
}
