using System.Globalization;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Search quality on the judged query set (<see cref="JudgedQueries"/>): precision at 5, recall at
/// 20 and the share of queries that find nothing, per kind of query, with forgiving search on one
/// in-process index against the baseline of every word as written (stemmed), same index, same run.
/// </summary>
internal static class QualityScenario
{
    public static async Task<int> RunAsync(int listings, int perKind, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("search-quality", "every word as written");
        var corpus = Corpus.Create(listings);
        using var index = new ListingIndex();
        foreach (var item in corpus.Items)
        {
            index.Upsert(item.Stored);
        }

        var judged = JudgedQueries.Create([.. corpus.Items.Select(i => i.Listing)], perKind);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var results = new Dictionary<bool, IReadOnlyList<(string Kind, double Precision, double Recall, bool Found)>>();
        foreach (var forgiving in new[] { false, true })
        {
            cancellationToken.ThrowIfCancellationRequested();
            index.Forgiving = forgiving;
            results[forgiving] = JudgedQueries.Evaluate(judged, text => [.. index.Search(new SearchQuery(text, null, null, null, null, null, null, null, null, SearchOrder.Relevance), 20, now).Hits.Select(h => h.ListingId)]);
        }

        report.Fact("judged queries", $"{judged.Count:N0} over {listings:N0} listings ({string.Join(", ", judged.GroupBy(q => q.Kind).Select(g => $"{g.Count()} {g.Key}"))})");
        foreach (var kind in judged.Select(q => q.Kind).Distinct().Append("all"))
        {
            report.Fact($"{kind}: precision@5 / recall@20 / no results", $"as written {Summary(results[false], kind)}; forgiving {Summary(results[true], kind)}");
        }

        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["listings"] = listings.ToString(CultureInfo.InvariantCulture),
            ["per_kind"] = perKind.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }

    private static string Summary(IReadOnlyList<(string Kind, double Precision, double Recall, bool Found)> results, string kind)
    {
        var of = kind == "all" ? [.. results] : results.Where(r => r.Kind == kind).ToList();
        return string.Create(CultureInfo.InvariantCulture, $"{of.Average(r => r.Precision):0.00} / {of.Average(r => r.Recall):0.00} / {of.Count(r => !r.Found) / (double)of.Count:P0}");
    }
}
