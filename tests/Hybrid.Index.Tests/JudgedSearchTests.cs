using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>
/// The judged query set (typos, plurals, synonyms, word parts, conditions, brands) over realistic
/// listings: forgiving search finds what a person expects, and is never worse than taking every
/// word as written. The load runner's search-quality scenario reports the same on a larger index.
/// </summary>
public sealed class JudgedSearchTests
{
    [Fact]
    public void ForgivingSearchFindsTheJudgedListingsAndNeverDoesWorseThanWordsAsWritten()
    {
        using var seller = PeerIdentity.Generate();
        using var index = new ListingIndex();
        var now = DateTimeOffset.UtcNow;
        var listings = ListingFactory.Realistic(seed: 5).Take(3000).ToList();
        foreach (var listing in listings)
        {
            var envelope = ListingFactory.Sign(seller, listing, now: now);
            index.Upsert(new StoredListing(listing.ListingId, seller.Id.ToString(), 1, now.AddDays(30).ToUnixTimeMilliseconds(), false, ListingFactory.Bytes(envelope)));
        }

        var judged = JudgedQueries.Create(listings, perKind: 15);
        var scores = new Dictionary<bool, IReadOnlyList<(string Kind, double Precision, double Recall, bool Found)>>();
        foreach (var forgiving in new[] { false, true })
        {
            index.Forgiving = forgiving;
            scores[forgiving] = JudgedQueries.Evaluate(judged, text => [.. index.Search(new SearchQuery(text, null, null, null, null, null, null, null, null, SearchOrder.Relevance), 20, now.ToUnixTimeMilliseconds()).Hits.Select(h => h.ListingId)]);
        }

        foreach (var kind in judged.Select(q => q.Kind).Distinct())
        {
            var written = scores[false].Where(s => s.Kind == kind).ToList();
            var forgiven = scores[true].Where(s => s.Kind == kind).ToList();
            Assert.True(forgiven.Average(s => s.Precision) >= written.Average(s => s.Precision) - 0.02, $"{kind}: precision@5 {forgiven.Average(s => s.Precision):0.00} forgiving, {written.Average(s => s.Precision):0.00} as written");
            Assert.True(forgiven.Average(s => s.Recall) >= written.Average(s => s.Recall) - 0.02, $"{kind}: recall@20 {forgiven.Average(s => s.Recall):0.00} forgiving, {written.Average(s => s.Recall):0.00} as written");
        }

        var all = scores[true];
        Assert.True(all.Average(s => s.Precision) >= 0.9, $"precision@5 over the judged set is {all.Average(s => s.Precision):0.00}");
        Assert.True(all.Average(s => s.Recall) >= 0.9, $"recall@20 over the judged set is {all.Average(s => s.Recall):0.00}");
        var missed = judged.Zip(all).Where(p => !p.Second.Found).Select(p => $"{p.First.Kind} '{p.First.Text}'").ToList();
        Assert.True(missed.Count <= judged.Count / 50, $"{missed.Count} of {judged.Count} judged queries found nothing: {string.Join(", ", missed)}");
    }
}
