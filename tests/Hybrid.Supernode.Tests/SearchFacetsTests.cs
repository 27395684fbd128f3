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
