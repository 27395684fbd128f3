using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>Facets: counts over a search's whole result set, per shard and added up across shards.</summary>
public sealed class FacetTests : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly List<ListingIndex> _shards = [new ListingIndex(), new ListingIndex()];
    private readonly ListingIndex _whole = new();

    public FacetTests()
    {
        // Lamps in three categories, three countries and two currencies; one chair that a lamp search leaves out.
        (string Category, string Country, decimal Price, string Currency)[] lamps =
        [
            ("furniture", "DE", 0.50m, "EUR"), ("furniture", "DE", 1m, "EUR"), ("furniture", "FR", 1.99m, "EUR"),
            ("electronics", "FR", 2m, "EUR"), ("electronics", "NL", 49.99m, "EUR"), ("electronics", "DE", 50m, "EUR"),
            ("art", "DE", 1200m, "EUR"), ("art", "NL", 15m, "USD"), ("furniture", "DE", 80m, "USD"),
        ];
        var n = 0;
        foreach (var (category, country, price, currency) in lamps)
        {
            Add($"Brass lamp {n++}", category, country, price, currency);
        }

        Add("Oak chair", "furniture", "DE", 30m, "EUR");
    }

    public void Dispose()
    {
        _shards.ForEach(s => s.Dispose());
        _whole.Dispose();
        _seller.Dispose();
    }

    [Fact]
    public void CountsCoverEveryMatchNotJustThePage()
    {
        var answer = _whole.Search(Query("lamp", currency: null), 2, Now.ToUnixTimeMilliseconds());
        var facets = answer.Facets!;

        Assert.Equal(2, answer.Hits.Length);
        Assert.Equal(9, answer.TotalHits);
        Assert.Equal(new Dictionary<string, long> { ["furniture"] = 4, ["electronics"] = 3, ["art"] = 2 }, facets.Categories);
        Assert.Equal(new Dictionary<string, long> { ["DE"] = 5, ["FR"] = 2, ["NL"] = 2 }, facets.Countries);
        Assert.Equal(new Dictionary<string, long> { ["EUR"] = 7, ["USD"] = 2 }, facets.Currencies);
        // Without a currency there is no price histogram: prices in different currencies do not add up.
        Assert.Empty(facets.PriceBuckets);
    }

    [Fact]
    public void ThePriceHistogramCountsTheQuerysCurrencyInOneTwoFiveBuckets()
    {
        var facets = _whole.Search(Query("lamp", currency: "EUR"), 20, Now.ToUnixTimeMilliseconds()).Facets!;

        var counted = Enumerable.Range(0, facets.PriceBuckets.Length)
            .Where(i => facets.PriceBuckets[i] > 0)
            .ToDictionary(i => FacetCounts.PriceEdgesMicros[i] / 1_000_000m, i => facets.PriceBuckets[i]);
        // 0.50 | 1, 1.99 | 2 | 49.99 | 50 | 1200; the USD lamps are not counted.
        Assert.Equal(new Dictionary<decimal, long> { [0m] = 1, [1m] = 2, [2m] = 1, [20m] = 1, [50m] = 1, [1000m] = 1 }, counted);
        Assert.Equal(new Dictionary<string, long> { ["EUR"] = 7 }, facets.Currencies);
    }

    [Fact]
    public void ShardsCountsAddUpToTheCountsOfOneIndexHoldingEverything()
    {
        foreach (var (text, currency) in new[] { ("lamp", (string?)"EUR"), ("lamp", null), ("oak", "EUR"), (string.Empty, "USD"), ("zebra", null) })
        {
            var query = Query(text, currency);
            var whole = _whole.Search(query, 5, Now.ToUnixTimeMilliseconds()).Facets!;
            var merged = FacetCounts.Merge(_shards.Select(s => s.Search(query, 5, Now.ToUnixTimeMilliseconds()).Facets!));

            Assert.Equal(whole.Categories.OrderBy(kv => kv.Key), merged.Categories.OrderBy(kv => kv.Key));
            Assert.Equal(whole.Countries.OrderBy(kv => kv.Key), merged.Countries.OrderBy(kv => kv.Key));
            Assert.Equal(whole.Currencies.OrderBy(kv => kv.Key), merged.Currencies.OrderBy(kv => kv.Key));
            Assert.Equal(string.Join(",", whole.PriceBuckets), string.Join(",", merged.PriceBuckets));
        }
    }

    [Fact]
    public void WithoutAskingThereAreNoCountsAndTheHitsAreTheSame()
    {
        var asked = _whole.Search(Query("lamp", "EUR"), 20, Now.ToUnixTimeMilliseconds());
        var plain = _whole.Search(Query("lamp", "EUR") with { Facets = false }, 20, Now.ToUnixTimeMilliseconds());

        Assert.Null(plain.Facets);
        Assert.Equal(plain.TotalHits, asked.TotalHits);
        Assert.Equal(plain.Hits.Select(h => h.ListingId), asked.Hits.Select(h => h.ListingId));
    }

    [Theory]
    [InlineData(0L, 0)]
    [InlineData(999_999L, 0)]
    [InlineData(1_000_000L, 1)]
    [InlineData(4_999_999L, 2)]
    [InlineData(5_000_000L, 3)]
    [InlineData(long.MaxValue, 30)]
    public void APriceFallsInTheBucketWhoseLowerBoundIsTheLargestNotAboveIt(long micros, int bucket) =>
        Assert.Equal(bucket, FacetCounts.BucketOf(micros));

    private static SearchQuery Query(string text, string? currency) =>
        new(text, null, null, currency, null, null, null, null, null, SearchOrder.Relevance, Facets: true);

    private void Add(string title, string category, string country, decimal price, string currency)
    {
        var listing = ListingFactory.Listing(title, "In working order.", price, currency, category, country);
        var envelope = ListingFactory.Sign(_seller, listing, now: Now);
        var stored = new StoredListing(listing.ListingId, _seller.Id.ToString(), 1, EnvelopePayload.Parser.ParseFrom(envelope.Payload).ExpiresAtMs, false, envelope.ToByteArray());
        _whole.Upsert(stored);
        _shards[ListingShards.Of(listing.ListingId, _shards.Count)].Upsert(stored);
    }
}

/// <summary>Distance: a circle around a point, and nearest first, from the listings' geohash centres.</summary>
public sealed class DistanceSearchTests : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private const double BerlinLatitude = 52.5200;
    private const double BerlinLongitude = 13.4050;
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly ListingIndex _index = new();
    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);

    public DistanceSearchTests()
    {
        Add("mitte", "u33dc0");     // Berlin centre, under 1 km
        Add("potsdam", "u33613");   // about 27 km
        Add("hamburg", "u1x0ek");   // about 255 km
        Add("paris", "u09tvw");     // about 878 km
        Add("nowhere", null);       // no location
    }

    public void Dispose()
    {
        _index.Dispose();
        _seller.Dispose();
    }

    [Fact]
    public void WithinARadiusKeepsOnlyListingsThatCloseAndNearestFirstOrdersByDistance()
    {
        Assert.Equal(["mitte", "potsdam"], Find(new GeoCircle(BerlinLatitude, BerlinLongitude, 50), SearchOrder.Distance));
        Assert.Equal(["mitte", "potsdam", "hamburg"], Find(new GeoCircle(BerlinLatitude, BerlinLongitude, 300), SearchOrder.Distance));
        // No radius: every listing, nearest first, the one without a location last.
        Assert.Equal(["mitte", "potsdam", "hamburg", "paris", "nowhere"], Find(new GeoCircle(BerlinLatitude, BerlinLongitude, 0), SearchOrder.Distance));
        // From Paris the order turns round.
        Assert.Equal(["paris", "hamburg", "potsdam", "mitte", "nowhere"], Find(new GeoCircle(48.8566, 2.3522, 0), SearchOrder.Distance));
    }

    [Fact]
    public void ShardsSortKeysAreMetresSoMergedPagesKeepTheOrder()
    {
        var hits = _index.Search(Query(new GeoCircle(BerlinLatitude, BerlinLongitude, 0), SearchOrder.Distance), 10, Now.ToUnixTimeMilliseconds()).Hits;

        Assert.Equal(hits.Select(h => h.SortKey).Order(), hits.Select(h => h.SortKey));
        Assert.InRange(hits[1].SortKey, 20_000, 35_000);
        Assert.Equal(long.MaxValue, hits[^1].SortKey);
    }

    private List<string> Find(GeoCircle near, SearchOrder order)
    {
        var byId = _ids.ToDictionary(kv => kv.Value, kv => kv.Key, StringComparer.Ordinal);
        return [.. _index.Search(Query(near, order), 10, Now.ToUnixTimeMilliseconds()).Hits.Select(h => byId[h.ListingId])];
    }

    private static SearchQuery Query(GeoCircle near, SearchOrder order) =>
        new("bicycle", null, null, null, null, null, null, null, null, order, Near: near);

    private void Add(string key, string? geohash)
    {
        var listing = ListingFactory.Listing($"Bicycle from {key}", "Rides well.", geohash: geohash ?? "u33db");
        if (geohash is null)
        {
            listing.Location = null;
        }

        var envelope = ListingFactory.Sign(_seller, listing, now: Now);
        _index.Upsert(new StoredListing(listing.ListingId, _seller.Id.ToString(), 1, EnvelopePayload.Parser.ParseFrom(envelope.Payload).ExpiresAtMs, false, envelope.ToByteArray()));
        _ids[key] = listing.ListingId;
    }
}
