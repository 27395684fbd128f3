using Hybrid.Index.Search;
using Lucene.Net.Analysis.Core;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Store;
using Lucene.Net.Util;

namespace Hybrid.Index.Tests;

/// <summary>
/// Under a trickle of refreshed writes (a segment of one listing each), a shard's base segment is
/// never merged again, while the small segments are merged among themselves and stay few.
/// </summary>
public sealed class ShardMergePolicyTests
{
    [Theory]
    [InlineData(2_000)]
    [InlineData(20_000)]
    public void ATrickleOfWritesNeverRewritesTheBaseSegmentAndKeepsSegmentsFew(int listings)
    {
        using var directory = new RAMDirectory();
        using var writer = new IndexWriter(directory, new IndexWriterConfig(LuceneVersion.LUCENE_48, new WhitespaceAnalyzer(LuceneVersion.LUCENE_48))
        {
            MergePolicy = new ShardMergePolicy(),
            MergeScheduler = new SerialMergeScheduler(),
            RAMBufferSizeMB = 64,
        });
        for (var i = 0; i < listings; i++)
        {
            writer.AddDocument(Listing(i));
        }

        writer.Commit();
        string first;
        using (var opened = DirectoryReader.Open(writer, applyAllDeletes: true))
        {
            first = Largest(opened);
        }

        var most = 0;
        for (var i = 0; i < 300; i++)
        {
            writer.UpdateDocument(new Term("id", $"new-{i}"), Listing(listings + i, $"new-{i}"));
            using var reader = DirectoryReader.Open(writer, applyAllDeletes: true);
            most = Math.Max(most, reader.Leaves.Count);
            Assert.Equal(first, Largest(reader));
            Assert.Equal(listings + i + 1, reader.NumDocs);
        }

        Assert.True(most <= 12, $"{most} segments at most under the trickle");
    }

    /// <summary>The name of the segment holding the most listings (the base).</summary>
    private static string Largest(DirectoryReader reader) => ((SegmentReader)reader.Leaves.MaxBy(l => l.AtomicReader.MaxDoc)!.AtomicReader).SegmentName;

    private static Document Listing(int i, string? id = null) =>
    [
        new StringField("id", id ?? $"listing-{i}", Field.Store.NO),
        new TextField("words", $"oak chair {i % 97} table {i % 13} lamp", Field.Store.NO),
    ];
}
