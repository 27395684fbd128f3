namespace Hybrid.Index.Search;

/// <summary>
/// Words a buyer may use for the same thing ("bike" and "bicycle"; "aluminium" and "aluminum";
/// "wooden" and "wood"). Groups of equivalent words, each word lower-case and unaccented; a query
/// word also matches the other words of its groups. A shipped list for everyday marketplace words,
/// which an operator's file extends (one group per line, words separated by commas, # comments).
/// </summary>
public sealed class Synonyms
{
    /// <summary>The shipped groups.</summary>
    public static readonly Synonyms Default = Parse(
    [
        "bike, bicycle, cycle",
        "ebike, e-bike, electric bike",
        "sofa, couch, settee",
        "phone, smartphone, mobile, cellphone, iphone",
        "laptop, notebook",
        "tv, television",
        "fridge, refrigerator",
        "aluminium, aluminum",
        "colour, color",
        "grey, gray",
        "jewellery, jewelry",
        "tyre, tire",
        "wooden, wood",
        "woollen, wool",
        "leather, leathern",
        "kids, children, childrens, child",
        "toy, toys",
        "pram, stroller, buggy",
        "wardrobe, closet",
        "trousers, pants",
        "jumper, sweater, pullover",
        "trainers, sneakers",
        "flat, apartment",
        "lesson, lessons, tutoring, tuition",
        "repair, fix, mending",
        "cupboard, cabinet",
        "armchair, chair",
        "mug, cup",
        "headphones, headset, earphones",
        "camera, cam",
        "guitar, guitars",
    ]);

    private readonly Dictionary<string, string[]> _alternatives;

    private Synonyms(Dictionary<string, string[]> alternatives) => _alternatives = alternatives;

    /// <summary>How many words have alternatives.</summary>
    public int Count => _alternatives.Count;

    /// <summary>Groups from lines of comma-separated words (blank lines and # comments skipped).</summary>
    public static Synonyms Parse(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var groups = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var raw in lines)
        {
            var line = raw.Split('#', 2)[0];
            var words = line.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(w => w.ToLowerInvariant())
                .Where(w => w.Length is > 0 and <= 64)
                .Distinct(StringComparer.Ordinal)
                .ToList();
            if (words.Count < 2)
            {
                continue;
            }

            foreach (var word in words)
            {
                if (!groups.TryGetValue(word, out var set))
                {
                    groups[word] = set = new HashSet<string>(StringComparer.Ordinal);
                }

                set.UnionWith(words.Where(w => w != word));
            }
        }

        return new Synonyms(groups.ToDictionary(g => g.Key, g => g.Value.Order(StringComparer.Ordinal).ToArray(), StringComparer.Ordinal));
    }

    /// <summary>The shipped groups extended by an operator's file.</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static Synonyms WithFile(string? path) =>
        string.IsNullOrWhiteSpace(path) ? Default : Default.Merge(Parse(File.ReadLines(path)));

    /// <summary>These groups and <paramref name="other"/>'s together.</summary>
    public Synonyms Merge(Synonyms other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var merged = _alternatives.ToDictionary(g => g.Key, g => new HashSet<string>(g.Value, StringComparer.Ordinal), StringComparer.Ordinal);
        foreach (var (word, alternatives) in other._alternatives)
        {
            if (!merged.TryGetValue(word, out var set))
            {
                merged[word] = set = new HashSet<string>(StringComparer.Ordinal);
            }

            set.UnionWith(alternatives);
        }

        return new Synonyms(merged.ToDictionary(g => g.Key, g => g.Value.Order(StringComparer.Ordinal).ToArray(), StringComparer.Ordinal));
    }

    /// <summary>The other words that mean <paramref name="word"/> (lower-case); empty when none.</summary>
    public IReadOnlyList<string> Of(string word) => _alternatives.TryGetValue(word, out var alternatives) ? alternatives : [];
}
