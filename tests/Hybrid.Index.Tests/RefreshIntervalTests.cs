using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>
/// A search refresh interval bounds how stale a search may be: a quiet index shows its first write
/// at once, a write made within the interval of the last refresh waits for the next one, and every
/// write shows once the interval has passed. Without an interval every write shows at once.
/// </summary>
public sealed class RefreshIntervalTests : IDisposable
{
    private readonly PeerIdentity _seller = PeerIdentity.Generate();

    public void Dispose() => _seller.Dispose();

    [Fact]
    public void WithoutAnIntervalEverySearchSeesEveryWriteMadeBeforeIt()
    {
        using var index = new ListingIndex();
        for (var i = 0; i < 5; i++)
        {
            var id = Publish(index, $"Walnut desk {i}");
            Assert.Contains(id, Found(index, "walnut desk"));
        }
    }

    [Fact]
    public void WithinTheIntervalASearchMayMissAWriteThatAFullRefreshShows()
    {
        using var index = new ListingIndex { RefreshInterval = TimeSpan.FromHours(1) };
        // A quiet index refreshed long ago: its first write shows at once.
        var first = Publish(index, "Walnut desk");
        Assert.Equal([first], Found(index, "walnut desk"));

        // Written again within the hour: searches keep the searcher they have.
        var second = Publish(index, "Walnut desk, second");
        Assert.Equal([first], Found(index, "walnut desk"));

        // What needs every write (counting, the shard's own checks) still refreshes, and searches then see it.
        Assert.Equal(2, index.Count);
        Assert.Equal(new[] { first, second }.Order(StringComparer.Ordinal), Found(index, "walnut desk").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task EveryWriteShowsOnceTheIntervalHasPassed()
    {
        using var index = new ListingIndex { RefreshInterval = TimeSpan.FromMilliseconds(200) };
        Publish(index, "Walnut desk");
        Assert.Single(Found(index, "walnut desk"));
        var later = Enumerable.Range(0, 5).Select(i => Publish(index, $"Walnut desk {i}")).ToList();
        await Eventually.TrueAsync(() => Task.FromResult(later.All(Found(index, "walnut desk").Contains)), TimeSpan.FromSeconds(10), "the five later desks in search once the 200 ms interval passed");
    }

    private string Publish(ListingIndex index, string title)
    {
        var listing = ListingFactory.Listing(title);
        index.Upsert(ShardListings.Stored(_seller, listing));
        return listing.ListingId;
    }

    private static List<string> Found(ListingIndex index, string text) =>
        [.. index.Search(ShardListings.Query(text), 50, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).Hits.Select(h => h.ListingId)];
}
