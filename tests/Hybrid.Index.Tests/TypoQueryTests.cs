using Hybrid.Index.Search;
using Lucene.Net.Analysis.Core;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Store;
using Lucene.Net.Util;

namespace Hybrid.Index.Tests;

/// <summary>
/// The typo clause shares its Levenshtein automata across shards, queries and threads: it must find
/// exactly what Lucene's own fuzzy query finds, on every index, whether the automata are built
/// afresh or taken from another search, and it must keep a bounded number of them.
/// </summary>
public sealed class TypoQueryTests : IDisposable
{
    private const string WordsField = "words";
    private readonly List<string> _words;
    private readonly (RAMDirectory Directory, DirectoryReader Reader)[] _shards;

    public TypoQueryTests()
    {
        var random = new Random(17);
        _words = [.. Enumerable.Range(0, 400).Select(_ => new string([.. Enumerable.Range(0, random.Next(5, 12)).Select(_ => (char)('a' + random.Next(6)))])).Distinct()];
        // Two "shards" holding different halves of the words, and some words in both.
        _shards = [Shard(_words.Where((_, i) => i % 2 == 0 || i % 7 == 0)), Shard(_words.Where((_, i) => i % 2 == 1 || i % 7 == 0))];
    }

    public void Dispose()
    {
        foreach (var (directory, reader) in _shards)
        {
            reader.Dispose();
            directory.Dispose();
        }
    }

    [Fact]
    public void FindsWhatLucenesFuzzyQueryFindsOnEveryShardFromManyThreadsAtOnce()
    {
        var random = new Random(5);
        var typos = _words.Take(150).Select(w => Typo(w, random)).Distinct().ToList();
        var cases = typos.SelectMany(t => Enumerable.Range(0, _shards.Length).Select(s => (Typo: t, Shard: s))).ToList();
        var expected = cases.ToDictionary(c => c, c => Hits(new FuzzyQuery(new Term(WordsField, c.Typo), Edits(c.Typo), 1, 32, true), c.Shard));
        Assert.True(expected.Values.Count(h => h.Count > 0) > cases.Count / 2, "most typos find their word (the test would prove little otherwise)");

        // Twice over, in parallel: the first pass builds and shares the automata, the second only reuses them.
        for (var pass = 0; pass < 2; pass++)
        {
            var found = new System.Collections.Concurrent.ConcurrentDictionary<(string, int), IReadOnlySet<string>>();
            Parallel.ForEach(cases, new ParallelOptions { MaxDegreeOfParallelism = 8 }, c => found[c] = Hits(new TypoQuery(new Term(WordsField, c.Typo), Edits(c.Typo)), c.Shard));
            foreach (var c in cases)
            {
                Assert.True(expected[c].SetEquals(found[c]), $"pass {pass}, \"{c.Typo}\" on shard {c.Shard}: expected [{string.Join(", ", expected[c])}], found [{string.Join(", ", found[c])}]");
            }
        }
    }

    [Fact]
    public void KeepsTheAutomataOfABoundedNumberOfWords()
    {
        foreach (var i in Enumerable.Range(0, 1_500))
        {
            Hits(new TypoQuery(new Term(WordsField, "word" + new string((char)('a' + (i % 26)), 1) + i.ToString("D5", System.Globalization.CultureInfo.InvariantCulture)), 1), 0);
            Assert.True(TypoQuery.WordsKept <= 1024, $"{TypoQuery.WordsKept} words' automata kept after {i + 1} different typos");
        }
    }

    private static int Edits(string word) => word.Length >= 9 ? 2 : 1;

    private static string Typo(string word, Random random)
    {
        var letters = word.ToCharArray();
        var at = random.Next(1, letters.Length - 1);
        (letters[at], letters[at + 1]) = (letters[at + 1], letters[at]);
        return random.Next(3) == 0 ? new string(letters).Remove(random.Next(1, letters.Length), 1) : new string(letters);
    }

    private HashSet<string> Hits(Query query, int shard)
    {
        var searcher = new IndexSearcher(_shards[shard].Reader);
        return [.. searcher.Search(query, 1_000).ScoreDocs.Select(d => searcher.Doc(d.Doc).Get(WordsField))];
    }

    private static (RAMDirectory, DirectoryReader) Shard(IEnumerable<string> words)
    {
        var directory = new RAMDirectory();
        using (var writer = new IndexWriter(directory, new IndexWriterConfig(LuceneVersion.LUCENE_48, new KeywordAnalyzer())))
        {
            foreach (var word in words)
            {
                writer.AddDocument(new Document { new StringField(WordsField, word, Field.Store.YES) });
            }
        }

        return (directory, DirectoryReader.Open(directory));
    }
}
