using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>
/// The filters every search applies (live, price range, currency, category, country) and the facet
/// counts must keep exactly the listings a buyer asked for, on an index of several segments with
/// withdrawals, replaced versions, expired listings and listings without a country, checked
/// against the listings themselves for many random filter combinations.
/// </summary>
public sealed class SearchFilterTests : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private static readonly string[] Currencies = ["EUR", "USD", "GBP"];
    private static readonly string[] Categories = ["furniture", "bikes", "phones", "toys", "books"];
    private static readonly string[] Countries = ["DE", "FR", "NL"];
    private readonly ListingIndex _index = new();
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly Random _random = new(41);
    private readonly Dictionary<string, Model> _live = [];

    public void Dispose()
    {
        _index.Dispose();
        _seller.Dispose();
    }

    private sealed record Model(long PriceMicros, string Currency, string Category, string? Country, long ExpiresMs);

    [Fact]
    public void FiltersAndFacetsKeepExactlyTheListingsAskedForAcrossSegmentsWithdrawalsAndNewVersions()
    {
        var ids = new List<string>();
        for (var batch = 0; batch < 5; batch++)
        {
            for (var i = 0; i < 80; i++)
            {
                ids.Add(Put(ListingRules.NewListingId()));
            }

            // Each batch becomes a segment of its own.
            _index.Refresh();
        }

        // Withdrawals, and new versions with other values (each a delete and an add).
        foreach (var id in ids.Where((_, i) => i % 11 == 0))
        {
            _index.Remove(id);
            _live.Remove(id);
        }

        foreach (var id in ids.Where((_, i) => i % 7 == 3))
        {
            Put(id);
        }

        Assert.True(_index.Segments() >= 5, $"{_index.Segments()} segments (the test needs several)");
        var at = Now.AddHours(2).ToUnixTimeMilliseconds();
        for (var round = 0; round < 150; round++)
        {
            var low = _random.Next(3) == 0 ? null : (long?)ListingRules.ToMicros(new Money { Units = _random.Next(0, 300), Currency = "EUR" });
            var high = _random.Next(3) == 0 ? null : (long?)((low ?? 0) + ListingRules.ToMicros(new Money { Units = _random.Next(0, 300), Currency = "EUR" }));
            var currency = Pick(Currencies);
            var category = Pick(Categories);
            // "PL": a country no listing is in.
            var country = Pick([.. Countries, "PL"]);
            var query = new SearchQuery("oak", low, high, currency, category, country, null, null, null, SearchOrder.Relevance, Facets: true);

            var found = _index.Search(query, 1000, at);

            var expected = _live.Where(l => l.Value.ExpiresMs > at
                && (low is null || l.Value.PriceMicros >= low) && (high is null || l.Value.PriceMicros <= high)
                && (currency is null || l.Value.Currency == currency)
                && (category is null || l.Value.Category == category)
                && (country is null || l.Value.Country == country)).ToList();
            var filters = $"price {low}..{high}, currency {currency}, category {category}, country {country}";
            Assert.True(expected.Select(l => l.Key).Order(StringComparer.Ordinal).SequenceEqual(found.Hits.Select(h => h.ListingId).Order(StringComparer.Ordinal)), $"listings found for {filters}");
            Assert.Equal(expected.Count, found.TotalHits);
            Assert.NotNull(found.Facets);
            Assert.Equal(Counts(expected, l => l.Category), found.Facets.Categories.OrderBy(c => c.Key, StringComparer.Ordinal).ToList());
            Assert.Equal(Counts(expected, l => l.Country), found.Facets.Countries.OrderBy(c => c.Key, StringComparer.Ordinal).ToList());
            Assert.Equal(Counts(expected, l => l.Currency), found.Facets.Currencies.OrderBy(c => c.Key, StringComparer.Ordinal).ToList());
            if (currency is not null)
            {
                var buckets = new long[FacetCounts.PriceEdgesMicros.Length];
                expected.ForEach(l => buckets[FacetCounts.BucketOf(l.Value.PriceMicros)]++);
                Assert.Equal(buckets, found.Facets.PriceBuckets.ToArray());
            }
        }
    }

    private static List<KeyValuePair<string, long>> Counts(List<KeyValuePair<string, Model>> listings, Func<Model, string?> value) =>
        [.. listings.Select(l => value(l.Value)).OfType<string>().GroupBy(v => v).Select(g => new KeyValuePair<string, long>(g.Key, g.LongCount())).OrderBy(c => c.Key, StringComparer.Ordinal)];

    private string? Pick(string[] values) => _random.Next(values.Length + 1) is var i && i < values.Length ? values[i] : null;

    /// <summary>Adds a listing with random values under <paramref name="id"/> (a new version when it is already indexed).</summary>
    private string Put(string id)
    {
        var listing = ListingFactory.Listing($"Oak item {_random.Next(1000)}", price: _random.Next(1, 500), currency: Currencies[_random.Next(Currencies.Length)], category: Categories[_random.Next(Categories.Length)], country: Countries[_random.Next(Countries.Length)]);
        listing.ListingId = id;
        var country = (string?)listing.Location.Country;
        if (_random.Next(8) == 0)
        {
            listing.Location = null;
            country = null;
        }

        // Some expire an hour from now: the searches look two hours ahead.
        var lifetime = _random.Next(6) == 0 ? TimeSpan.FromHours(1) : TimeSpan.FromDays(30);
        var version = _live.ContainsKey(id) ? 2UL : 1UL;
        var envelope = ListingFactory.Sign(_seller, listing, version, lifetime, Now);
        var expires = EnvelopePayload.Parser.ParseFrom(envelope.Payload).ExpiresAtMs;
        _index.Upsert(new StoredListing(id, _seller.Id.ToString(), version, expires, false, Google.Protobuf.MessageExtensions.ToByteArray(envelope)));
        _live[id] = new Model(ListingRules.ToMicros(listing.Price), listing.Price.Currency, listing.Category, country, expires);
        return id;
    }
}
