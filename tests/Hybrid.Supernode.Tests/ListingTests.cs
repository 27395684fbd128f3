using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

public sealed class ListingTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly PeerIdentity _other = PeerIdentity.Generate();
    // Every test searches for words of its own, so tests sharing one supernode do not see each other's listings.
    private readonly string _word = "w" + ListingRules.NewListingId()[..10].ToLowerInvariant();

    private Protocol.Api.SupernodeClients Client => fixture.Node.Client;

    public void Dispose()
    {
        _seller.Dispose();
        _other.Dispose();
    }

    private async Task<Listing> PublishAsync(Listing listing, PeerIdentity? seller = null, ulong version = 1, TimeSpan? lifetime = null)
    {
        await Client.Listings.PublishListingAsync(ListingFactory.Sign(seller ?? _seller, listing, version, lifetime));
        return listing;
    }

    private async Task<List<string>> SearchAsync(string text, Action<SearchRequest>? refine = null)
    {
        var request = new SearchRequest { Text = text, Limit = 100 };
        refine?.Invoke(request);
        return [.. (await Client.Listings.SearchAsync(request)).Hits.Select(h => h.Record.Listing.ListingId)];
    }

    private static async Task<RpcException> RefusedAsync(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);

    [Fact]
    public async Task APublishedListingIsSearchableAndReadableAtOnce()
    {
        var listing = await PublishAsync(ListingFactory.Listing($"Touring bikes {_word}", "Steel frame", price: 250m, category: "sports"));

        Assert.Equal([listing.ListingId], await SearchAsync($"{_word} bike "));
        var record = await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId });
        Assert.Equal(ListingState.Active, record.State);
        Assert.Equal(_seller.Id.ToString(), record.Seller);
        Assert.Equal("250.00 EUR", ListingRules.Format(record.Listing.Price));
        // The record carries the seller's signed bytes: anyone can verify them.
        Protocol.Envelopes.SignedEnvelopes.Verify(record.Envelope, Protocol.Envelopes.EnvelopeKinds.Listing, DateTimeOffset.UtcNow, _seller.Id);
    }

    [Fact]
    public async Task TheNewestVersionWinsAndAnOlderOneIsRefused()
    {
        var v1 = await PublishAsync(ListingFactory.Listing($"Sofa {_word}", price: 100m), version: 1);
        var v2 = v1.Clone();
        v2.Title = $"Sofa {_word} reduced";
        v2.Price = ListingRules.ParseMoney("80", "EUR");
        await PublishAsync(v2, version: 2);

        var replay = await RefusedAsync(() => Client.Listings.PublishListingAsync(ListingFactory.Sign(_seller, v1, 1)).ResponseAsync);

        Assert.Equal(StatusCode.AlreadyExists, replay.StatusCode);
        Assert.Contains("not newer", replay.Status.Detail, StringComparison.Ordinal);
        Assert.Equal([v1.ListingId], await SearchAsync($"{_word} reduced "));
        Assert.Equal("80.00 EUR", ListingRules.Format((await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = v1.ListingId })).Listing.Price));
    }

    [Fact]
    public async Task TypeAheadMatchesTheLastWordAsAPrefixOnlyWhenAsked()
    {
        var listing = await PublishAsync(ListingFactory.Listing($"Accordion {_word}", category: "music"));

        var typing = await Client.Listings.SearchAsync(new SearchRequest { Text = $"{_word} accor", TypeAhead = true });
        Assert.Equal([listing.ListingId], typing.Hits.Select(h => h.Record.Listing.ListingId));
        Assert.Empty(typing.DroppedWords);

        // Not typing: "accor" is a word, not a prefix, and no listing has it; the answer leaves it out and says so.
        var written = await Client.Listings.SearchAsync(new SearchRequest { Text = $"{_word} accor" });
        Assert.Equal(["accor"], written.DroppedWords);
    }

    [Fact]
    public async Task VersionsPublishedAllAtOnceEndWithTheNewestStoredAndFound()
    {
        var listing = ListingFactory.Listing($"Piano {_word}");
        var versions = Enumerable.Range(1, 12).Select(v =>
        {
            var copy = listing.Clone();
            copy.Title = $"Piano {_word} v{v}";
            return ListingFactory.Sign(_seller, copy, (ulong)v);
        }).Reverse().ToList();

        // Sent newest first and all at once: whatever order they land in, older ones are refused or superseded.
        var results = await Task.WhenAll(versions.Select(async e =>
        {
            try
            {
                await Client.Listings.PublishListingAsync(e);
                return StatusCode.OK;
            }
            catch (RpcException ex)
            {
                return ex.StatusCode;
            }
        }));

        Assert.All(results, c => Assert.True(c is StatusCode.OK or StatusCode.AlreadyExists, c.ToString()));
        var stored = await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId });
        Assert.Equal(12UL, stored.Version);
        Assert.Equal([listing.ListingId], await SearchAsync($"{_word} v12"));
        // Version 11's words are gone: no listing has them all, and the answer says it left "v11" out.
        var old = await Client.Listings.SearchAsync(new SearchRequest { Text = $"{_word} v11" });
        Assert.Equal(["v11"], old.DroppedWords);
        Assert.All(old.Hits, h => Assert.Equal(12UL, h.Record.Version));
    }

    [Fact]
    public async Task PublishingTheSameSignedVersionAgainIsHarmless()
    {
        var listing = ListingFactory.Listing($"Kettle {_word}");
        var envelope = ListingFactory.Sign(_seller, listing);

        await Client.Listings.PublishListingAsync(envelope);
        var again = await Client.Listings.PublishListingAsync(envelope);

        Assert.Equal(1UL, again.Version);
        Assert.Single(await SearchAsync($"{_word} "));
    }

    [Fact]
    public async Task OnlyTheSellerCanWithdrawAndAWithdrawnListingIsGoneFromSearch()
    {
        var listing = await PublishAsync(ListingFactory.Listing($"Lamp {_word}"));

        var foreign = await RefusedAsync(() => Client.Listings.WithdrawListingAsync(ListingFactory.Withdrawal(_other, listing.ListingId, 2)).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, foreign.StatusCode);
        Assert.Single(await SearchAsync($"{_word} "));

        await Client.Listings.WithdrawListingAsync(ListingFactory.Withdrawal(_seller, listing.ListingId, 2));

        Assert.Empty(await SearchAsync($"{_word} "));
        Assert.Equal(ListingState.Withdrawn, (await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId })).State);
        var comeback = await RefusedAsync(() => Client.Listings.PublishListingAsync(ListingFactory.Sign(_seller, listing, 1)).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, comeback.StatusCode);
    }

    [Fact]
    public async Task AnotherSellerCannotTakeOverAListingId()
    {
        var listing = await PublishAsync(ListingFactory.Listing($"Radio {_word}"));
        var hijack = listing.Clone();
        hijack.Title = "Radio (cheaper, pay me)";

        var ex = await RefusedAsync(() => Client.Listings.PublishListingAsync(ListingFactory.Sign(_other, hijack, 5)).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Equal(_seller.Id.ToString(), (await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId })).Seller);
    }

    [Fact]
    public async Task AnExpiredListingLeavesSearchAndGetSaysItExpired()
    {
        var listing = await PublishAsync(ListingFactory.Listing($"Tickets {_word}"), lifetime: TimeSpan.FromSeconds(2));
        Assert.Single(await SearchAsync($"{_word} "));

        await Eventually.TrueAsync(async () => (await SearchAsync($"{_word} ")).Count == 0, TimeSpan.FromSeconds(30), "the expired listing to leave search");

        Assert.Equal(ListingState.Expired, (await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId })).State);
    }

    [Fact]
    public async Task PagesCoverEveryHitOnceInOrder()
    {
        var ids = new List<string>();
        for (var i = 0; i < 25; i++)
        {
            ids.Add((await PublishAsync(ListingFactory.Listing($"Poster {_word}", price: 10m + i))).ListingId);
        }

        var seen = new List<string>();
        var token = string.Empty;
        var pages = 0;
        do
        {
            var page = await Client.Listings.SearchAsync(new SearchRequest { Text = _word, Limit = 10, PageToken = token, Sort = SearchSort.PriceAscending });
            Assert.Equal(25, page.TotalHits);
            seen.AddRange(page.Hits.Select(h => h.Record.Listing.ListingId));
            token = page.NextPageToken;
            pages++;
        }
        while (token.Length > 0 && pages < 10);

        Assert.Equal(3, pages);
        Assert.Equal(ids, seen);
        var foreign = await RefusedAsync(() => Client.Listings.SearchAsync(new SearchRequest { Text = "other words", PageToken = "10." + new string('0', 16) }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, foreign.StatusCode);
    }

    [Fact]
    public async Task FiltersAndListBySellerWorkThroughTheApi()
    {
        var cheap = await PublishAsync(ListingFactory.Listing($"Chair {_word}", price: 20m, category: "home", country: "DE", region: "Berlin", geohash: "u33dbb"));
        var dear = await PublishAsync(ListingFactory.Listing($"Chair {_word}", price: 200m, category: "home", country: "FR", region: "Île-de-France", geohash: "u09tvw"), _other);

        Assert.Equal([cheap.ListingId], await SearchAsync(_word, r => { r.MinPrice = ListingRules.ParseMoney("10", "EUR"); r.MaxPrice = ListingRules.ParseMoney("50", "EUR"); }));
        Assert.Equal([dear.ListingId], await SearchAsync(_word, r => r.Country = "FR"));
        Assert.Equal([dear.ListingId], await SearchAsync(_word, r => r.Region = "ile-de-france"));
        Assert.Equal([cheap.ListingId], await SearchAsync(_word, r => r.GeohashPrefix = "u33"));
        Assert.Equal([dear.ListingId], await SearchAsync(_word, r => r.Seller = _other.Id.ToString()));
        Assert.Equal([dear.ListingId, cheap.ListingId], await SearchAsync(_word, r => r.Sort = SearchSort.PriceDescending));
        var mine = await Client.Listings.ListBySellerAsync(new ListBySellerRequest { Seller = _other.Id.ToString() });
        Assert.Equal([dear.ListingId], mine.Listings.Select(l => l.Listing.ListingId));
    }

    public static TheoryData<string, Func<Listing, Listing>, string> BadListings => new()
    {
        { "empty title", l => { l.Title = " "; return l; }, "title is empty" },
        { "oversized title", l => { l.Title = new string('x', 141); return l; }, "at most 140" },
        { "oversized description", l => { l.Description = new string('x', 8001); return l; }, "at most 8000" },
        { "negative price", l => { l.Price.Units = -1; return l; }, "negative" },
        { "absurd price", l => { l.Price.Units = 5_000_000_000_000; return l; }, "ceiling" },
        { "unknown currency", l => { l.Price.Currency = "EUX"; return l; }, "ISO 4217" },
        { "unknown category", l => { l.Category = "weapons"; return l; }, "not one of" },
        { "bad listing id", l => { l.ListingId = "short"; return l; }, "26 characters" },
        { "quantity over the maximum", l => { l.Quantity = ListingRules.MaxQuantity + 1; return l; }, "quantity" },
        { "bad country", l => { l.Location.Country = "Germany"; return l; }, "ISO 3166" },
    };

    [Theory]
    [MemberData(nameof(BadListings))]
    public async Task AnInvalidListingIsRefusedWithItsReason(string what, Func<Listing, Listing> spoil, string reason)
    {
        var listing = spoil(ListingFactory.Listing($"Thing {_word}"));

        var ex = await RefusedAsync(() => Client.Listings.PublishListingAsync(ListingFactory.Sign(_seller, listing)).ResponseAsync);

        Assert.True(ex.StatusCode == StatusCode.InvalidArgument, $"{what}: {ex.StatusCode} {ex.Status.Detail}");
        Assert.Contains(reason, ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExpiryTooFarAheadOrPassedIsRefused()
    {
        var tooFar = await RefusedAsync(() => Client.Listings.PublishListingAsync(ListingFactory.Sign(_seller, ListingFactory.Listing("Boat"), lifetime: TimeSpan.FromDays(91))).ResponseAsync);
        var passed = await RefusedAsync(() => Client.Listings.PublishListingAsync(ListingFactory.Sign(_seller, ListingFactory.Listing("Boat"), lifetime: TimeSpan.FromDays(1), now: DateTimeOffset.UtcNow.AddDays(-2))).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, tooFar.StatusCode);
        Assert.Contains("90 days", tooFar.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.FailedPrecondition, passed.StatusCode);
        Assert.Contains("expired", passed.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AForgedListingIsPermissionDenied()
    {
        var envelope = ListingFactory.Sign(_seller, ListingFactory.Listing($"Watch {_word}", price: 5000m));
        var payload = envelope.Payload.ToByteArray();
        payload[^3] ^= 0x01;
        envelope.Payload = Google.Protobuf.ByteString.CopyFrom(payload);

        var ex = await RefusedAsync(() => Client.Listings.PublishListingAsync(envelope).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Empty(await SearchAsync($"{_word} "));
    }

    [Theory]
    [InlineData("limit", "limit must be")]
    [InlineData("currency", "ISO 4217")]
    [InlineData("category", "not one of")]
    [InlineData("seller", "seller:")]
    [InlineData("range", "min_price is above max_price")]
    public async Task ABadSearchIsInvalidArgumentWithItsReason(string what, string reason)
    {
        var request = new SearchRequest { Text = "anything" };
        switch (what)
        {
            case "limit": request.Limit = 1000; break;
            case "currency": request.Currency = "XXX"; break;
            case "category": request.Category = "nope"; break;
            case "seller": request.Seller = "nobody"; break;
            case "range": request.MinPrice = ListingRules.ParseMoney("10", "EUR"); request.MaxPrice = ListingRules.ParseMoney("5", "EUR"); break;
        }

        var ex = await RefusedAsync(() => Client.Listings.SearchAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(reason, ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnknownListingIsNotFound()
    {
        var ex = await RefusedAsync(() => Client.Listings.GetListingAsync(new GetListingRequest { ListingId = ListingRules.NewListingId() }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
    }
}
