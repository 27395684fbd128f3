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

    [Fact]
    public void ATrickleOfWritesDoesNotRewriteASegmentOfATenthOfTheShardEveryTenWrites()
    {
        // A base segment and one of a tenth of the listings, under a fifth so not large: the shape a
        // shard of a million has after its rebuild (a segment of 103,000 listings beside the base).
        // The tiered policy, which floors every small segment's size at 2 MB, merged that tenth
        // again with every nine single-listing segments: 2.3 s of a core each second at a million.
        using var directory = new RAMDirectory();
        var merges = new CountingMergeScheduler();
        using var writer = new IndexWriter(directory, new IndexWriterConfig(LuceneVersion.LUCENE_48, new WhitespaceAnalyzer(LuceneVersion.LUCENE_48))
        {
            MergePolicy = new ShardMergePolicy(),
            MergeScheduler = merges,
            RAMBufferSizeMB = 64,
        });
        for (var i = 0; i < 20_000; i++)
        {
            writer.AddDocument(Listing(i));
        }

        writer.Commit();
        for (var i = 20_000; i < 22_000; i++)
        {
            writer.AddDocument(Listing(i));
        }

        writer.Commit();
        using (var loaded = DirectoryReader.Open(writer, applyAllDeletes: true))
        {
            Assert.Equal([20_000, 2_000], loaded.Leaves.Select(l => l.AtomicReader.MaxDoc).OrderDescending());
        }

        const int Writes = 400;
        var most = 0;
        for (var i = 0; i < Writes; i++)
        {
            writer.UpdateDocument(new Term("id", $"new-{i}"), Listing(22_000 + i, $"new-{i}"));
            using var reader = DirectoryReader.Open(writer, applyAllDeletes: true);
            most = Math.Max(most, reader.Leaves.Count);
            Assert.Equal(22_000 + i + 1, reader.NumDocs);
        }

        Assert.True(merges.Rewritten <= 10 * Writes, $"merges rewrote {merges.Rewritten:N0} listings for {Writes} written (largest merge {merges.Largest:N0})");
        Assert.True(merges.Largest < 2_000, $"a merge of {merges.Largest:N0} listings rewrote the tenth");
        using var end = DirectoryReader.Open(writer, applyAllDeletes: true);
        Assert.True(most <= 14, $"{most} segments at most under the trickle (at the end, of {string.Join(", ", end.Leaves.Select(l => l.AtomicReader.MaxDoc))} listings)");
    }

    /// <summary>Runs merges as they are found, on the writing thread, counting the listings each rewrites.</summary>
    private sealed class CountingMergeScheduler : MergeScheduler
    {
        public long Rewritten { get; private set; }

        public int Largest { get; private set; }

        public override void Merge(IndexWriter writer, MergeTrigger trigger, bool newMergesFound)
        {
            lock (this)
            {
                while (writer.GetNextMerge() is { } merge)
                {
                    Rewritten += merge.TotalDocCount;
                    Largest = Math.Max(Largest, merge.TotalDocCount);
                    writer.Merge(merge);
                }
            }
        }

        protected override void Dispose(bool disposing)
        {
        }
    }

    /// <summary>The name of the segment holding the most listings (the base).</summary>
    private static string Largest(DirectoryReader reader) => ((SegmentReader)reader.Leaves.MaxBy(l => l.AtomicReader.MaxDoc)!.AtomicReader).SegmentName;

    private static Document Listing(int i, string? id = null) =>
    [
        new StringField("id", id ?? $"listing-{i}", Field.Store.NO),
        new TextField("words", $"oak chair {i % 97} table {i % 13} lamp", Field.Store.NO),
    ];
}
