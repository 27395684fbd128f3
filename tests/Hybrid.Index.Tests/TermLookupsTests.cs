using Hybrid.Index.Search;
using Lucene.Net.Analysis.Core;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;

namespace Hybrid.Index.Tests;

/// <summary>
/// Term look-ups kept per segment must answer exactly what Lucene's own look-ups answer: the same
/// document frequencies, and term queries that match and score the same documents, on an index of
/// several segments with deletions, after merges, and from many threads at once.
/// </summary>
public sealed class TermLookupsTests : IDisposable
{
    private const string Words = "words";
    private readonly RAMDirectory _directory = new();
    private readonly IndexWriter _writer;
    private readonly Random _random = new(23);
    private readonly List<string> _vocabulary;
    private int _next;

    public TermLookupsTests()
    {
        _vocabulary = [.. Enumerable.Range(0, 300).Select(_ => new string([.. Enumerable.Range(0, _random.Next(3, 9)).Select(_ => (char)('a' + _random.Next(8)))])).Distinct()];
        _writer = new IndexWriter(_directory, new IndexWriterConfig(LuceneVersion.LUCENE_48, new WhitespaceAnalyzer(LuceneVersion.LUCENE_48))
        {
            // No merges but the one the test asks for.
            MergePolicy = new LogDocMergePolicy { MergeFactor = 1000 },
            Similarity = new BM25Similarity(),
        });
    }

    public void Dispose()
    {
        _writer.Dispose();
        _directory.Dispose();
    }

    [Fact]
    public void AnswersAsLuceneDoesAcrossSegmentsDeletesAndMergesFromManyThreads()
    {
        // Five segments, then deletions in two of them.
        for (var segment = 0; segment < 5; segment++)
        {
            Add(40 + (segment * 30));
            _writer.Commit();
        }

        _writer.DeleteDocuments(new Term("id", "3"), new Term("id", "77"), new Term("id", "150"));
        _writer.Commit();
        using (var reader = DirectoryReader.Open(_directory))
        {
            Assert.True(reader.Leaves.Count >= 5, $"{reader.Leaves.Count} segments (the test needs several)");
            Assert.True(reader.NumDeletedDocs > 0, "deletions in the index");
            AnswersAsLucene(reader);
            // Kept per segment: a word looked up again is answered by every segment without a seek.
            Assert.All(reader.Leaves, leaf => Assert.True(TermLookups.KeptFor(leaf.AtomicReader) > 0, $"segment {leaf.Ord} kept no answers"));
        }

        // New segments, then everything merged into one: the merged segment answers afresh.
        Add(60);
        _writer.ForceMerge(1);
        _writer.Commit();
        using (var merged = DirectoryReader.Open(_directory))
        {
            Assert.Single(merged.Leaves);
            Assert.Equal(0, TermLookups.KeptFor(merged.Leaves[0].AtomicReader));
            AnswersAsLucene(merged);
        }
    }

    [Fact]
    public void KeepsABoundedNumberOfWordsPerSegment()
    {
        Add(50);
        _writer.Commit();
        using var reader = DirectoryReader.Open(_directory);
        var segment = reader.Leaves[0].AtomicReader;
        for (var i = 0; i < TermLookups.MaxWordsPerSegment + 500; i++)
        {
            var word = i < _vocabulary.Count ? _vocabulary[i] : $"absent{i}";
            Assert.Equal(reader.DocFreq(new Term(Words, word)), new TermLookups(reader).DocFreq(Words, word));
            Assert.True(TermLookups.KeptFor(segment) <= TermLookups.MaxWordsPerSegment, $"{TermLookups.KeptFor(segment)} words kept after {i + 1}");
        }
    }

    private void AnswersAsLucene(DirectoryReader reader)
    {
        var searcher = new IndexSearcher(reader) { Similarity = new BM25Similarity() };
        var words = _vocabulary.Concat(["absent", "zzzz"]).ToList();
        // Twice from 8 threads: once as segments first answer, once from what they kept.
        for (var pass = 0; pass < 2; pass++)
        {
            Parallel.ForEach(words, new ParallelOptions { MaxDegreeOfParallelism = 8 }, word =>
            {
                var lookups = new TermLookups(reader);
                var term = new Term(Words, word);
                Assert.Equal(reader.DocFreq(term), lookups.DocFreq(Words, word));
                var expected = searcher.Search(new TermQuery(term), 1000);
                var found = searcher.Search(lookups.Query(Words, word), 1000);
                Assert.Equal(expected.TotalHits, found.TotalHits);
                Assert.Equal(expected.ScoreDocs.Select(d => (d.Doc, d.Score)), found.ScoreDocs.Select(d => (d.Doc, d.Score)));
            });
        }

        Assert.Contains(words, word => reader.DocFreq(new Term(Words, word)) > 1);
    }

    private void Add(int count)
    {
        for (var i = 0; i < count; i++)
        {
            var text = string.Join(' ', Enumerable.Range(0, _random.Next(2, 8)).Select(_ => _vocabulary[_random.Next(_vocabulary.Count)]));
            _writer.AddDocument(new Document { new StringField("id", (_next++).ToString(System.Globalization.CultureInfo.InvariantCulture), Field.Store.NO), new TextField(Words, text, Field.Store.NO) });
        }
    }
}
