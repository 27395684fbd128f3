using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

public sealed class ListingIndexTests : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private readonly ListingIndex _index = new();
    private readonly PeerIdentity _alice = PeerIdentity.Generate();
    private readonly PeerIdentity _bob = PeerIdentity.Generate();

    public void Dispose()
    {
        _index.Dispose();
        _alice.Dispose();
        _bob.Dispose();
    }

    private string Add(Listing listing, PeerIdentity? seller = null, TimeSpan? lifetime = null)
    {
        var who = seller ?? _alice;
        var envelope = ListingFactory.Sign(who, listing, lifetime: lifetime, now: Now);
        var expires = EnvelopePayload.Parser.ParseFrom(envelope.Payload).ExpiresAtMs;
        _index.Upsert(new StoredListing(listing.ListingId, who.Id.ToString(), 1, expires, false, envelope.ToByteArray()));
        return listing.ListingId;
    }

    private List<string> Find(string text, SearchOrder order = SearchOrder.Relevance, int take = 50, Func<SearchQuery, SearchQuery>? filter = null, DateTimeOffset? at = null, bool typeAhead = false)
    {
        var query = new SearchQuery(text, null, null, null, null, null, null, null, null, order, typeAhead);
        return [.. _index.Search(filter is null ? query : filter(query), take, (at ?? Now).ToUnixTimeMilliseconds()).Hits.Select(h => h.ListingId)];
    }

    [Fact]
    public void CompactingFoldsTheSmallSegmentsIntoOneLeavesTheLargeOneAndLosesNothing()
    {
        var all = new List<string>();
        for (var i = 0; i < 100; i++)
        {
            all.Add(Add(ListingFactory.Listing($"Pine shelf {i}")));
        }

        _index.Refresh();
        for (var round = 0; round < 4; round++)
        {
            // A write or two, then a search: each refresh leaves a small segment (four: fewer than
            // the merge policy folds by itself).
            all.Add(Add(ListingFactory.Listing($"Pine stool {round}")));
            _ = Find("pine");
        }

        var withdrawn = all[^1];
        _index.Remove(withdrawn);
        Assert.Equal(5, _index.Segments());

        Assert.True(_index.CompactSmallSegments());

        Assert.Equal(2, _index.Segments());
        Assert.Equal(all.SkipLast(1).Order(StringComparer.Ordinal), Find("pine", take: 200).Order(StringComparer.Ordinal));
        Assert.False(_index.CompactSmallSegments());
    }

    [Fact]
    public void StemmingFindsBikeForBikes()
    {
        var bike = Add(ListingFactory.Listing("Red bike", "A sturdy city bike"));
        Add(ListingFactory.Listing("Blue kettle"));

        Assert.Equal([bike], Find("bikes "));
        Assert.Equal([bike], Find("biking "));
    }

    [Fact]
    public void EveryWordMustMatch()
    {
        var red = Add(ListingFactory.Listing("Red road bike"));
        Add(ListingFactory.Listing("Blue road bike"));
        Add(ListingFactory.Listing("Red kettle"));

        Assert.Equal([red], Find("red bike "));
    }

    [Fact]
    public void AQuotedPhraseMatchesOnlyInThatOrder()
    {
        var exact = Add(ListingFactory.Listing("Mountain bike with disc brakes"));
        Add(ListingFactory.Listing("Bike for the mountain trails"));

        Assert.Equal([exact], Find("\"mountain bike\""));
        Assert.Equal(2, Find("mountain bike ").Count);
    }

    [Fact]
    public void TheLastWordMatchesAsAPrefixWhileTyping()
    {
        var bicycle = Add(ListingFactory.Listing("Vintage bicycle"));
        Add(ListingFactory.Listing("Vintage bible"));

        Assert.Equal([bicycle], Find("vintage bicy", typeAhead: true));
        Assert.Empty(Find("vintage bicy ", typeAhead: true));
        Assert.Empty(Find("vintage bicy"));
    }

    [Fact]
    public void AccentsAndDottedCapitalsAreFolded()
    {
        var cafe = Add(ListingFactory.Listing("Café chairs from İstanbul", region: "İstanbul", country: "TR"));

        Assert.Equal([cafe], Find("cafe istanbul "));
        Assert.Equal([cafe], Find("CAFÉ "));
        Assert.Equal([cafe], Find(string.Empty, filter: q => q with { Region = "istanbul" }));
    }

    [Fact]
    public void ATitleMatchOutranksADescriptionMatch()
    {
        var inDescription = Add(ListingFactory.Listing("Helmet", "Goes well with any bike"));
        var inTitle = Add(ListingFactory.Listing("Bike", "Goes well with any helmet"));

        Assert.Equal([inTitle, inDescription], Find("bike "));
    }

    [Fact]
    public void EachFilterNarrowsTheResults()
    {
        var cheapBerlin = Add(ListingFactory.Listing("Lamp", price: 5m, category: "home", country: "DE", region: "Berlin", geohash: "u33dbc", tags: "vintage"));
        var dearMunich = Add(ListingFactory.Listing("Lamp", price: 50m, category: "home", country: "DE", region: "München", geohash: "u281zz"));
        var dollars = Add(ListingFactory.Listing("Lamp", price: 7m, currency: "USD", category: "electronics", country: "US", region: "New York", geohash: "dr5ru1"), _bob);

        Assert.Equal([cheapBerlin, dearMunich], Find("lamp ", SearchOrder.PriceAscending, filter: q => q with { Currency = "EUR" }));
        Assert.Equal([cheapBerlin], Find("lamp ", filter: q => q with { Currency = "EUR", MinPriceMicros = 1_000_000, MaxPriceMicros = 10_000_000 }));
        Assert.Equal([dollars], Find("lamp ", filter: q => q with { Category = "electronics" }));
        Assert.Equal([dollars], Find("lamp ", filter: q => q with { Country = "US" }));
        Assert.Equal([dearMunich], Find("lamp ", filter: q => q with { Region = "münchen" }));
        Assert.Equal([dollars], Find("lamp ", filter: q => q with { Seller = _bob.Id.ToString() }));
        Assert.Equal([cheapBerlin], Find("lamp ", filter: q => q with { GeohashPrefix = "u33d" }));
    }

    [Fact]
    public void EachSortOrdersAsAsked()
    {
        var old = Add(ListingFactory.Listing("Guitar", price: 300m, created: Now.AddDays(-3)));
        var mid = Add(ListingFactory.Listing("Guitar", price: 100m, created: Now.AddDays(-2)));
        var fresh = Add(ListingFactory.Listing("Guitar", price: 200m, created: Now.AddDays(-1)));

        Assert.Equal([mid, fresh, old], Find("guitar ", SearchOrder.PriceAscending));
        Assert.Equal([old, fresh, mid], Find("guitar ", SearchOrder.PriceDescending));
        Assert.Equal([fresh, mid, old], Find("guitar ", SearchOrder.Newest));
    }

    [Fact]
    public void EqualScoresAreOrderedByListingIdSoPagesAreStable()
    {
        var ids = Enumerable.Range(0, 30).Select(_ => Add(ListingFactory.Listing("Chair"))).ToList();

        Assert.Equal(ids.Order(StringComparer.Ordinal), Find("chair "));
    }

    [Fact]
    public void AnUpdateReplacesTheListingAndAWithdrawalRemovesIt()
    {
        var listing = ListingFactory.Listing("Old title");
        Add(listing);
        var updated = listing.Clone();
        updated.Title = "New title";
        Add(updated);

        Assert.Equal([listing.ListingId], Find("new "));
        Assert.Empty(Find("old "));
        Assert.Equal(1, _index.Count);

        _index.Remove(listing.ListingId);
        Assert.Empty(Find("new "));
    }

    [Fact]
    public void ExpiredListingsAreNotFoundAndCanBeSweptOut()
    {
        var shortLived = Add(ListingFactory.Listing("Tent"), lifetime: TimeSpan.FromMinutes(1));
        var lasting = Add(ListingFactory.Listing("Tent"));

        Assert.Equal(2, Find("tent ").Count);
        Assert.Equal([lasting], Find("tent ", at: Now.AddMinutes(2)));
        Assert.Equal([shortLived], _index.RemoveExpired(Now.AddMinutes(2).ToUnixTimeMilliseconds()));
        Assert.Equal(1, _index.Count);
    }

    [Fact]
    public void HitsCarryTheSortKeyTheShardsAreMergedBy()
    {
        var listing = ListingFactory.Listing("Camera", price: 12.5m, created: Now.AddHours(-1));
        Add(listing);
        var query = new SearchQuery("camera", null, null, null, null, null, null, null, null, SearchOrder.PriceAscending);

        var byPrice = Assert.Single(_index.Search(query, 10, Now.ToUnixTimeMilliseconds()).Hits);
        var byDate = Assert.Single(_index.Search(query with { Order = SearchOrder.Newest }, 10, Now.ToUnixTimeMilliseconds()).Hits);
        var byScore = Assert.Single(_index.Search(query with { Order = SearchOrder.Relevance }, 10, Now.ToUnixTimeMilliseconds()).Hits);

        Assert.Equal(12_500_000, byPrice.SortKey);
        Assert.Equal(listing.CreatedMs, byDate.SortKey);
        Assert.True(byScore.Score > 0);
        Assert.Equal(listing.ListingId, byScore.ListingId);
    }

    [Fact]
    public void ReputationWeightReordersRelevanceThroughTheExtensionPoint()
    {
        var honest = Add(ListingFactory.Listing("Desk", "desk"), _alice);
        var unknown = Add(ListingFactory.Listing("Desk"), _bob);
        var query = new SearchQuery("desk", null, null, null, null, null, null, null, null, SearchOrder.Relevance);

        var neutral = _index.Search(query, 10, Now.ToUnixTimeMilliseconds(), _ => 1.0).Hits.Select(h => h.ListingId).ToList();
        var weighted = _index.Search(query, 10, Now.ToUnixTimeMilliseconds(), seller => seller == _bob.Id.ToString() ? 10.0 : 1.0).Hits.Select(h => h.ListingId).ToList();

        Assert.Equal([honest, unknown], neutral);
        Assert.Equal([unknown, honest], weighted);
    }

    [Fact]
    public void RemoveExpiredTakesOutExactlyTheListingsPastTheirExpiry()
    {
        var shortLived = new[] { Add(ListingFactory.Listing("Old lamp"), lifetime: TimeSpan.FromHours(1)), Add(ListingFactory.Listing("Old chair"), lifetime: TimeSpan.FromHours(2)) };
        var kept = Add(ListingFactory.Listing("New lamp"), lifetime: TimeSpan.FromDays(30));

        Assert.Empty(_index.RemoveExpired(Now.ToUnixTimeMilliseconds()));
        var expired = _index.RemoveExpired(Now.AddHours(3).ToUnixTimeMilliseconds());

        Assert.Equal(shortLived.Order(StringComparer.Ordinal), expired);
        Assert.Equal(1, _index.Count);
        Assert.Equal([kept], Find("lamp", at: Now.AddHours(3)));
        Assert.Empty(_index.RemoveExpired(Now.AddHours(3).ToUnixTimeMilliseconds()));
    }

    [Fact]
    public async Task EverySearchStartedAfterAWriteSeesIt()
    {
        // Searches run side by side on the thread pool: one refreshing the reader must not let the
        // others answer from the reader before the write (a seller's own new listing, not found).
        for (var i = 0; i < 200; i++)
        {
            Add(ListingFactory.Listing($"Filler lamp {i}", "to give each refresh some work"));
        }

        const int Searchers = 8;
        for (var round = 0; round < 60; round++)
        {
            var word = $"qzround{round}x";
            var id = Add(ListingFactory.Listing($"Round {word}"));
            using var start = new Barrier(Searchers);
            var found = await Task.WhenAll(Enumerable.Range(0, Searchers).Select(_ => Task.Run(() =>
            {
                start.SignalAndWait(TimeSpan.FromSeconds(10));
                return Find(word).Contains(id);
            })));

            Assert.True(found.All(f => f), $"round {round}: {found.Count(f => !f)} of {Searchers} searches started after the write did not find it");
        }
    }
}
