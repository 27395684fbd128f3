using System.Text.RegularExpressions;
using Hybrid.Protocol.V1;

namespace Hybrid.Testing;

/// <summary>One judged query: what a buyer types, and the listings a person would expect for it.</summary>
/// <param name="Kind">exact, plural, typo, synonym, word-parts, condition or brand.</param>
/// <param name="Text">The query as typed.</param>
/// <param name="Relevant">Ids of the listings that answer it: those of the thing meant (and of its condition or brand, when named).</param>
public sealed record JudgedQuery(string Kind, string Text, IReadOnlySet<string> Relevant);

/// <summary>
/// A judged query set over listings from <see cref="ListingFactory.Realistic"/>: for things of the
/// catalogue, the query as written, in the plural, with a typo, by a synonym, split or joined, and
/// with a condition or brand. The relevant listings are judged from what each listing is (its
/// thing, condition and brand), not from what a search engine returns. The same seed, the same set.
/// </summary>
public static partial class JudgedQueries
{
    // What a buyer may type for a thing of the catalogue, other than its own name.
    private static readonly Dictionary<string, string[]> Synonymous = new(StringComparer.Ordinal)
    {
        ["road bike"] = ["road bicycle"], ["mountain bike"] = ["mountain bicycle"], ["smartphone"] = ["mobile", "phone"],
        ["laptop"] = ["notebook"], ["headphones"] = ["headset", "earphones"], ["armchair"] = ["chair"],
        ["wool sweater"] = ["wool jumper", "woollen pullover"], ["model train"] = ["model trains"],
    };

    private static readonly Dictionary<string, string[]> WordParts = new(StringComparer.Ordinal)
    {
        ["smartphone"] = ["smart phone"], ["bookshelf"] = ["book shelf"], ["armchair"] = ["arm chair"],
        ["headphones"] = ["head phones"], ["turntable"] = ["turn table"], ["greenhouse"] = ["green house"],
        ["e-reader"] = ["ereader", "e reader"], ["cookbook"] = ["cook book"], ["road bike"] = ["roadbike"],
    };

    private static readonly string[] Conditions = ["new", "like new", "used", "refurbished", "vintage", "handmade"];

    public static IReadOnlyList<JudgedQuery> Create(IReadOnlyList<Listing> listings, int perKind = 40, int seed = 11)
    {
        ArgumentNullException.ThrowIfNull(listings);
        var random = new Random(seed);
        var described = listings.Select(Describe).Where(d => d is not null).Select(d => d!.Value).ToList();
        var byThing = described.GroupBy(d => d.Thing, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var things = byThing.Keys.Order(StringComparer.Ordinal).ToList();
        var queries = new List<JudgedQuery>();

        IReadOnlySet<string> All(string thing) => byThing[thing].Select(d => d.Id).ToHashSet(StringComparer.Ordinal);

        for (var i = 0; i < perKind; i++)
        {
            var thing = things[random.Next(things.Count)];
            queries.Add(new("exact", thing, All(thing)));
            queries.Add(new("plural", Plural(thing), All(thing)));
            if (Typo(thing, random) is { } typo)
            {
                queries.Add(new("typo", typo, All(thing)));
            }

            var example = byThing[thing][random.Next(byThing[thing].Count)];
            var conditional = byThing[thing].Where(d => d.Condition == example.Condition).Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
            queries.Add(new("condition", $"{example.Condition} {thing}", conditional));
            var branded = byThing[thing].Where(d => string.Equals(d.Brand, example.Brand, StringComparison.OrdinalIgnoreCase)).Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
            queries.Add(new("brand", $"{example.Brand} {thing}", branded));
        }

        foreach (var (kind, table) in new[] { ("synonym", Synonymous), ("word-parts", WordParts) })
        {
            var known = table.Keys.Where(byThing.ContainsKey).Order(StringComparer.Ordinal).ToList();
            for (var i = 0; i < perKind && known.Count > 0; i++)
            {
                var thing = known[random.Next(known.Count)];
                var typed = table[thing][random.Next(table[thing].Length)];
                queries.Add(new(kind, typed, All(thing)));
            }
        }

        return queries;
    }

    /// <summary>Every judged query ranked by <paramref name="rank"/> (its text to the ids of its top 20, best first) and judged.</summary>
    public static IReadOnlyList<(string Kind, double PrecisionAt5, double RecallAt20, bool Found)> Evaluate(IEnumerable<JudgedQuery> judged, Func<string, IReadOnlyList<string>> rank)
    {
        ArgumentNullException.ThrowIfNull(judged);
        ArgumentNullException.ThrowIfNull(rank);
        return [.. judged.Select(q =>
        {
            var (precision, recall, found) = Judge(q, rank(q.Text));
            return (q.Kind, precision, recall, found);
        })];
    }

    /// <summary>Precision at 5, recall at 20, and whether anything was found, for one query's ranked ids.</summary>
    public static (double PrecisionAt5, double RecallAt20, bool Found) Judge(JudgedQuery query, IReadOnlyList<string> ranked)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(ranked);
        var relevant = query.Relevant.Count;
        var precision = relevant == 0 ? 1 : ranked.Take(5).Count(query.Relevant.Contains) / (double)Math.Min(5, relevant);
        var recall = relevant == 0 ? 1 : ranked.Take(20).Count(query.Relevant.Contains) / (double)Math.Min(20, relevant);
        return (precision, recall, ranked.Count > 0);
    }

    private static (string Id, string Thing, string Condition, string Brand)? Describe(Listing listing)
    {
        // Titles read "<adjective> <brand> <thing>, <condition>".
        var match = TitleShape().Match(listing.Title);
        return match.Success && Conditions.Contains(match.Groups["condition"].Value, StringComparer.Ordinal)
            ? (listing.ListingId, match.Groups["thing"].Value, match.Groups["condition"].Value, match.Groups["brand"].Value)
            : null;
    }

    private static string Plural(string thing) =>
        thing.EndsWith('s') ? thing : thing.EndsWith("sh", StringComparison.Ordinal) || thing.EndsWith('x') ? thing + "es" : thing + "s";

    /// <summary>Two neighbouring letters of the thing's longest word swapped (not the first letter), for words of five letters or more.</summary>
    private static string? Typo(string thing, Random random)
    {
        var words = thing.Split(' ');
        var longest = words.MaxBy(w => w.Length)!;
        if (longest.Length < 5 || !longest.All(char.IsLetter))
        {
            return null;
        }

        var at = random.Next(1, longest.Length - 1);
        var swapped = string.Concat(longest.AsSpan(0, at), longest.AsSpan(at + 1, 1), longest.AsSpan(at, 1), longest.AsSpan(at + 2));
        return swapped == longest ? null : thing.Replace(longest, swapped, StringComparison.Ordinal);
    }

    [GeneratedRegex("^\\S+ (?<brand>\\S+) (?<thing>.+), (?<condition>[a-z ]+)$")]
    private static partial Regex TitleShape();
}
