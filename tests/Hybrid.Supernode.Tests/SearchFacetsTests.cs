using System.Text.Json;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using static Hybrid.Supernode.Tests.Infrastructure.Cli;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Facets through a real supernode (two search shards) and the CLI: counts over the whole result
/// set, added up across shards, most first; a price histogram in the query's currency.
/// </summary>
public sealed class SearchFacetsTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ABuyerSeesHowManyListingsEachCategoryCountryCurrencyAndPriceRangeHolds()
    {
        var seller = await InitAsync(_temp, "seller", "Tea Trader");
        foreach (var (title, price, currency, category, location) in new[]
        {
            ("Copper teapot", "12", "EUR", "home", "DE/Berlin"),
            ("Cast iron teapot", "35", "EUR", "home", "FR/Paris"),
            ("Porcelain teapot, hand painted", "48.50", "EUR", "art", "DE/Munich"),
            ("Teapot shaped lamp", "60", "USD", "home", "US/Ohio"),
        })
        {
            await Ok(seller.RunAsync("listing", "publish", "--title", title, "--price", price, "--currency", currency, "--category", category, "--location", location, "--supernode", fixture.Node.GrpcUrl));
        }

        var buyer = await InitAsync(_temp, "buyer", "Buyer");
        var inEuros = Json(await Ok(buyer.RunAsync("search", "teapot", "--currency", "EUR", "--facets", "--limit", "1", "--supernode", fixture.Node.GrpcUrl, "--json")));

        Assert.Single(inEuros.GetProperty("listings").EnumerateArray());
        Assert.Equal(3, inEuros.GetProperty("total").GetInt64());
        var facets = inEuros.GetProperty("facets");
        Assert.Equal(["home 2", "art 1"], Counts(facets, "categories"));
        Assert.Equal(["DE 2", "FR 1"], Counts(facets, "countries"));
        Assert.Equal(["EUR 3"], Counts(facets, "currencies"));
        Assert.Equal(
            ["10.00 EUR-20.00 EUR 1", "20.00 EUR-50.00 EUR 2"],
            facets.GetProperty("prices").EnumerateArray().Select(p => $"{p.GetProperty("min").GetString()}-{p.GetProperty("max").GetString()} {p.GetProperty("count").GetInt64()}"));

        // Without a currency: every currency counted, and no histogram (prices in two currencies do not add up).
        var anyCurrency = Json(await Ok(buyer.RunAsync("search", "teapot", "--facets", "--supernode", fixture.Node.GrpcUrl, "--json"))).GetProperty("facets");
        Assert.Equal(["EUR 3", "USD 1"], Counts(anyCurrency, "currencies"));
        Assert.Empty(anyCurrency.GetProperty("prices").EnumerateArray());

        // As a table, after the listings.
        var table = await Ok(buyer.RunAsync("search", "teapot", "--facets", "--supernode", fixture.Node.GrpcUrl));
        Assert.Contains("home 3", table.Stdout, StringComparison.Ordinal);
        Assert.Contains("USD 1", table.Stdout, StringComparison.Ordinal);

        // Not asked, not counted.
        Assert.Equal(JsonValueKind.Null, Json(await Ok(buyer.RunAsync("search", "teapot", "--supernode", fixture.Node.GrpcUrl, "--json"))).GetProperty("facets").ValueKind);
    }

    [Fact]
    public async Task APageTokenFromAQueryWithCountsTurnsThePageOfTheSameQueryWithout()
    {
        var seller = await InitAsync(_temp, "pager", "Pager");
        foreach (var n in Enumerable.Range(1, 3))
        {
            await Ok(seller.RunAsync("listing", "publish", "--title", $"Walnut spoon {n}", "--price", "5", "--currency", "EUR", "--category", "home", "--supernode", fixture.Node.GrpcUrl));
        }

        var first = await fixture.Node.Client.Listings.SearchAsync(new SearchRequest { Text = "walnut spoon", Limit = 2, Facets = true });
        var second = await fixture.Node.Client.Listings.SearchAsync(new SearchRequest { Text = "walnut spoon", Limit = 2, PageToken = first.NextPageToken });

        Assert.Equal(3, first.Facets.Categories.Single().Count);
        Assert.Null(second.Facets);
        Assert.Equal(3, first.Hits.Concat(second.Hits).Select(h => h.Record.Listing.ListingId).Distinct().Count());
    }

    private static IEnumerable<string> Counts(JsonElement facets, string name) =>
        facets.GetProperty(name).EnumerateArray().Select(c => $"{c.GetProperty("value").GetString()} {c.GetProperty("count").GetInt64()}");
}

/// <summary>When no listing has every word: the word left out is named, and a correction is suggested.</summary>
public sealed class NoMatchSearchTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task AQueryWithAWordNoListingHasShowsTheRestAndSaysWhichWordWasLeftOut()
    {
        var seller = await InitAsync(_temp, "seller", "Carpenter");
        await Ok(seller.RunAsync("listing", "publish", "--title", "Vintage oak dining chair", "--price", "80", "--currency", "EUR", "--category", "home", "--supernode", fixture.Node.GrpcUrl));
        await Ok(seller.RunAsync("listing", "publish", "--title", "Oak bookshelf, five shelves", "--price", "120", "--currency", "EUR", "--category", "home", "--supernode", fixture.Node.GrpcUrl));
        var buyer = await InitAsync(_temp, "buyer", "Buyer");

        // No listing is an oak chair that is also a zebra: the chair is shown, without "zebra".
        var relaxed = Json(await Ok(buyer.RunAsync("search", "oak zebra chair", "--supernode", fixture.Node.GrpcUrl, "--json")));
        Assert.Equal(["zebra"], relaxed.GetProperty("droppedWords").EnumerateArray().Select(w => w.GetString()));
        Assert.Equal("Vintage oak dining chair", Assert.Single(relaxed.GetProperty("listings").EnumerateArray()).GetProperty("title").GetString());

        // A misspelt word beside one that matches nothing: the correction is suggested as well.
        var suggested = Json(await Ok(buyer.RunAsync("search", "bookshelv zebra", "--supernode", fixture.Node.GrpcUrl, "--json")));
        Assert.Equal("bookshelf zebra", suggested.GetProperty("suggestion").GetString());
        Assert.Equal(["zebra"], suggested.GetProperty("droppedWords").EnumerateArray().Select(w => w.GetString()));

        // As text: the person reads both.
        var text = await Ok(buyer.RunAsync("search", "bookshelv zebra", "--supernode", fixture.Node.GrpcUrl));
        Assert.Contains("showing listings without 'zebra'", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("Did you mean: bookshelf zebra", text.Stdout, StringComparison.Ordinal);

        // A query that matches is left alone, and one word that matches nothing finds nothing.
        var exact = Json(await Ok(buyer.RunAsync("search", "oak chair", "--supernode", fixture.Node.GrpcUrl, "--json")));
        Assert.Empty(exact.GetProperty("droppedWords").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, exact.GetProperty("suggestion").ValueKind);
        var nothing = Json(await Ok(buyer.RunAsync("search", "zebra", "--supernode", fixture.Node.GrpcUrl, "--json")));
        Assert.Equal(0, nothing.GetProperty("total").GetInt64());
        Assert.Empty(nothing.GetProperty("droppedWords").EnumerateArray());
    }
}

/// <summary>Distance through a real supernode and the CLI, and what a malformed point or radius gets.</summary>
public sealed class DistanceSearchCliTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ABuyerFindsWhatIsForSaleNearbyNearestFirst()
    {
        var seller = await InitAsync(_temp, "seller", "Cyclist");
        foreach (var (place, region, geohash) in new[] { ("Hamburg", "Hamburg", "u1x0ek"), ("Potsdam", "Brandenburg", "u33613"), ("Mitte", "Berlin", "u33dc0") })
        {
            await Ok(seller.RunAsync("listing", "publish", "--title", $"Tandem bicycle in {place}", "--price", "300", "--currency", "EUR", "--category", "sports", "--location", $"DE/{region}/{geohash}", "--supernode", fixture.Node.GrpcUrl));
        }

        var buyer = await InitAsync(_temp, "buyer", "Buyer");
        var direct = await fixture.Node.Client.Listings.SearchAsync(new SearchRequest { Text = "tandem", Near = new GeoPoint { Latitude = 52.52, Longitude = 13.405 }, WithinKm = 100, Sort = SearchSort.Distance });
        Assert.InRange(direct.Hits[1].DistanceKm, 20, 35);
        var nearby = Json(await Ok(buyer.RunAsync("search", "tandem", "--near", "52.52,13.405", "--within", "100", "--sort", "distance", "--supernode", fixture.Node.GrpcUrl, "--json")));
        var listings = nearby.GetProperty("listings").EnumerateArray().ToList();
        Assert.Equal(["Tandem bicycle in Mitte", "Tandem bicycle in Potsdam"], listings.Select(l => l.GetProperty("title").GetString()));
        Assert.InRange(listings[0].GetProperty("distanceKm").GetDouble(), 0, 2);
        // The CLI measures from the verified listing, and agrees with the supernode.
        Assert.Equal(direct.Hits[1].DistanceKm, listings[1].GetProperty("distanceKm").GetDouble(), 3);

        // A geohash names the point as well; without --within every listing comes, nearest first.
        var fromHamburg = Json(await Ok(buyer.RunAsync("search", "tandem", "--near", "u1x0ek", "--sort", "distance", "--supernode", fixture.Node.GrpcUrl, "--json")));
        Assert.Equal("Tandem bicycle in Hamburg", fromHamburg.GetProperty("listings")[0].GetProperty("title").GetString());

        var usage = await buyer.RunAsync("search", "tandem", "--within", "10", "--supernode", fixture.Node.GrpcUrl);
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("need --near", usage.Stderr, StringComparison.Ordinal);
        var badPoint = await buyer.RunAsync("search", "tandem", "--near", "north of here", "--supernode", fixture.Node.GrpcUrl);
        Assert.Equal(2, badPoint.ExitCode);
        Assert.Contains("neither LATITUDE,LONGITUDE", badPoint.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(91, 0, 10, SearchSort.Relevance, "is not a point")]
    [InlineData(double.NaN, 0, 10, SearchSort.Relevance, "is not a point")]
    [InlineData(52, 13, -1, SearchSort.Relevance, "within_km is a distance")]
    [InlineData(52, 13, double.PositiveInfinity, SearchSort.Relevance, "within_km is a distance")]
    public async Task AMalformedPointOrRadiusIsRefusedWithTheReason(double latitude, double longitude, double withinKm, SearchSort sort, string reason)
    {
        var ex = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await fixture.Node.Client.Listings.SearchAsync(
            new SearchRequest { Text = "tandem", Near = new GeoPoint { Latitude = latitude, Longitude = longitude }, WithinKm = withinKm, Sort = sort }));
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(reason, ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARadiusOrDistanceSortWithoutAPointIsRefused()
    {
        foreach (var request in new[] { new SearchRequest { Text = "tandem", WithinKm = 5 }, new SearchRequest { Text = "tandem", Sort = SearchSort.Distance } })
        {
            var ex = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await fixture.Node.Client.Listings.SearchAsync(request));
            Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, ex.StatusCode);
            Assert.Contains("need near", ex.Status.Detail, StringComparison.Ordinal);
        }
    }
}
