using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>
/// Search as a buyer types it, over eight everyday listings: typos, synonyms and spelling variants,
/// word parts. Each case names the listing a person would expect first; these must never regress.
/// A word the index knows is never corrected, and words that match nothing still find nothing.
/// </summary>
public sealed class ForgivingSearchTests : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private readonly ListingIndex _index = new();
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);

    public ForgivingSearchTests()
    {
        Add("chair", "Vintage oak dining chair", "Solid oak, re-glued joints, seat recovered in linen.");
        Add("bike", "Mountain bike, 21 gears, aluminium frame", "Front suspension, new brake pads.");
        Add("iphone", "iPhone 13 Pro 256GB, unlocked", "Battery health 89%, always in a case.");
        Add("train", "Children's wooden toy train set", "Forty pieces of track, three engines.");
        Add("guitar", "Guitar lessons for beginners", "One hour a week at my studio or online.");
        Add("mug", "Hand-thrown stoneware mug", "Dishwasher safe, holds 350 ml.");
        Add("sofa", "Grey three-seater sofa", "Pet-free, smoke-free home.");
        Add("camera", "Canon EOS 80D camera body", "Low shutter count, with charger.");
    }

    public void Dispose()
    {
        _index.Dispose();
        _seller.Dispose();
    }

    [Theory]
    // Typos: one edit from five letters, two from nine.
    [InlineData("chiar", "chair")]
    [InlineData("oak chiar", "chair")]
    [InlineData("montain bike", "bike")]
    [InlineData("stonware mug", "mug")]
    [InlineData("guitar lesons", "guitar")]
    // Synonyms and spelling variants.
    [InlineData("bicycle", "bike")]
    [InlineData("aluminum bike", "bike")]
    [InlineData("wood train", "train")]
    [InlineData("couch", "sofa")]
    [InlineData("gray sofa", "sofa")]
    [InlineData("kids train", "train")]
    // Word parts.
    [InlineData("i phone", "iphone")]
    [InlineData("iphone13", "iphone")]
    [InlineData("phone 13", "iphone")]
    // What already worked keeps working.
    [InlineData("chairs", "chair")]
    [InlineData("mugs", "mug")]
    [InlineData("guitar lesson", "guitar")]
    [InlineData("80D", "camera")]
    public void ABuyersWordsFindTheListingTheyMean(string query, string expected)
    {
        var hits = Find(query);

        Assert.True(hits.Count > 0, $"'{query}' found nothing; expected {expected}");
        Assert.Equal(_ids[expected], hits[0]);
    }

    [Fact]
    public void AnOperatorsSynonymsExtendTheShippedOnes()
    {
        using var index = new ListingIndex(Synonyms.Default.Merge(Synonyms.Parse(["# this community's words", "lamp, luminaire", "single-word-ignored"])));
        var listing = ListingFactory.Listing("Brass luminaire, 1970s", "Works, new cable");
        var envelope = ListingFactory.Sign(_seller, listing, now: Now);
        index.Upsert(new StoredListing(listing.ListingId, _seller.Id.ToString(), 1, EnvelopePayload.Parser.ParseFrom(envelope.Payload).ExpiresAtMs, false, envelope.ToByteArray()));
        var query = new SearchQuery("lamp", null, null, null, null, null, null, null, null, SearchOrder.Relevance, false);

        Assert.Equal([listing.ListingId], index.Search(query, 10, Now.ToUnixTimeMilliseconds()).Hits.Select(h => h.ListingId));
        Assert.Empty(Find("lamp"));
        Assert.Equal(["bicycle", "cycle"], Synonyms.Default.Of("bike"));
    }

    [Fact]
    public void AWordTheIndexKnowsIsTakenAsMeantAndSynonymsFindTheRest()
    {
        var chain = Add("chain", "Bicycle chain, 116 links", "Fits 8-speed drivetrains.");

        // "chain" is a word of the index, so it is not corrected to "chair".
        Assert.Equal([chain], Find("chain"));

        // "bike" finds the mountain bike as written and the chain through "bicycle".
        Assert.Equal(new[] { _ids["bike"], chain }.Order(StringComparer.Ordinal), Find("bike").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void NumbersAndModelCodesAreNotCorrectedAndWordsThatMatchNothingFindNothing()
    {
        Assert.Empty(Find("80E"));
        Assert.Empty(Find("iphone 14"));
        Assert.Empty(Find("zebra"));
        Assert.Empty(Find("oak zebra"));
    }

    [Fact]
    public void UnknownWordsGetTheClosestKnownWordAndKnownWordsNumbersAndShortWordsNone()
    {
        var suggested = _index.Suggest("oak chiar montain zebra 80E gray stonwares \"chiar\"");

        // "chiar" and "montain" are one edit from words of the index; "stonwares" (nine letters) two.
        Assert.Equal(
            ["chiar→chair", "montain→mountain", "stonwares→stoneware"],
            suggested.Select(s => $"{s.Word}→{s.Correction}").Order(StringComparer.Ordinal));
        Assert.All(suggested, s => Assert.Equal(1, s.DocFreq));
    }

    private List<string> Find(string text)
    {
        var query = new SearchQuery(text, null, null, null, null, null, null, null, null, SearchOrder.Relevance, false);
        return [.. _index.Search(query, 20, Now.ToUnixTimeMilliseconds()).Hits.Select(h => h.ListingId)];
    }

    private string Add(string key, string title, string description)
    {
        var listing = ListingFactory.Listing(title, description);
        var envelope = ListingFactory.Sign(_seller, listing, now: Now);
        _index.Upsert(new StoredListing(listing.ListingId, _seller.Id.ToString(), 1, EnvelopePayload.Parser.ParseFrom(envelope.Payload).ExpiresAtMs, false, envelope.ToByteArray()));
        _ids[key] = listing.ListingId;
        return listing.ListingId;
    }
}
