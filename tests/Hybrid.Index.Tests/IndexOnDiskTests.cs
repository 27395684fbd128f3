using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;

namespace Hybrid.Index.Tests;

/// <summary>A shard's index copied to disk at each commit: what a restart opens again instead of indexing every listing.</summary>
public sealed class IndexOnDiskTests : IDisposable
{
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly TempDir _temp = new();

    public void Dispose()
    {
        _seller.Dispose();
        _temp.Dispose();
    }

    private string Folder => _temp.Sub("shard-0");

    private StoredListing Stored(string title, ulong version = 1)
    {
        var listing = ListingFactory.Listing(title);
        var envelope = ListingFactory.Sign(_seller, listing);
        return new StoredListing(listing.ListingId, _seller.Id.ToString(), version, DateTimeOffset.UtcNow.AddDays(30).ToUnixTimeMilliseconds(), false, envelope.ToByteArray());
    }

    private static List<string> Find(ListingIndex index, string text) =>
        [.. index.Search(new SearchQuery(text, null, null, null, null, null, null, null, null, SearchOrder.Relevance), 50, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).Hits.Select(h => h.ListingId)];

    [Fact]
    public void ACommittedIndexOpensAgainWithItsListingsAndTheirVersions()
    {
        var lamp = Stored("Brass desk lamp", version: 3);
        var chair = Stored("Oak dining chair", version: 5);
        using (var index = new ListingIndex(path: Folder))
        {
            Assert.Equal(IndexOrigin.Empty, index.OpenedFrom);
            Assert.True(index.Persistent);
            index.Add(lamp);
            index.Add(chair);
            index.Add(Stored("Walnut side table"));
            index.Refresh();
            index.Commit();
            index.Remove(chair.ListingId);
            // Disposing commits what is pending.
        }

        using var reopened = new ListingIndex(path: Folder);

        Assert.Equal(IndexOrigin.Disk, reopened.OpenedFrom);
        Assert.Equal(2, reopened.Count);
        Assert.Equal([lamp.ListingId], Find(reopened, "lamp"));
        Assert.Empty(Find(reopened, "chair"));
        var versions = reopened.IndexedVersions();
        Assert.Equal(2, versions.Count);
        Assert.Equal(3, versions[lamp.ListingId]);
    }

    [Fact]
    public void OnlyTheLastCommitsFilesStayOnDisk()
    {
        using var index = new ListingIndex(path: Folder);
        for (var round = 0; round < 12; round++)
        {
            for (var i = 0; i < 20; i++)
            {
                index.Upsert(Stored($"Bike number {round} {i}"));
            }

            index.Commit();
        }

        var onDisk = System.IO.Directory.EnumerateFiles(Folder).Select(Path.GetFileName).ToHashSet();
        var segments = onDisk.Where(f => f!.StartsWith("segments_", StringComparison.Ordinal)).ToList();
        Assert.Single(segments);
        Assert.DoesNotContain(onDisk, f => f!.EndsWith(".part", StringComparison.Ordinal));
        // Every file on disk is part of that commit: a fresh reader of the folder holds every listing.
        using var disk = Lucene.Net.Store.FSDirectory.Open(Folder);
        var commit = new Lucene.Net.Index.SegmentInfos();
        commit.Read(disk);
        Assert.Equal(onDisk.Where(f => f != "write.lock").Order(), commit.GetFiles(disk, includeSegmentsFile: true).Order());
        Assert.Equal(240, commit.TotalDocCount);
    }

    [Fact]
    public void ASecondIndexOnTheSameFolderStaysInMemory()
    {
        using var first = new ListingIndex(path: Folder);
        first.Add(Stored("Brass desk lamp"));
        first.Commit();

        using var second = new ListingIndex(path: Folder);

        Assert.Equal(IndexOrigin.Held, second.OpenedFrom);
        Assert.False(second.Persistent);
        Assert.Equal(0, second.Count);
        second.Add(Stored("Oak dining chair"));
        Assert.Equal(1, second.Count);
    }

    [Fact]
    public void AnUnreadableCommitIsThrownAwayAndTheIndexStartsAfresh()
    {
        using (var index = new ListingIndex(path: Folder))
        {
            index.Add(Stored("Brass desk lamp"));
        }

        foreach (var file in System.IO.Directory.EnumerateFiles(Folder).Where(f => !f.EndsWith("write.lock", StringComparison.Ordinal)))
        {
            File.WriteAllBytes(file, [1, 2, 3, 4, 5, 6, 7, 8]);
        }

        using (var index = new ListingIndex(path: Folder))
        {
            Assert.Equal(IndexOrigin.Unreadable, index.OpenedFrom);
            Assert.Equal(0, index.Count);
            index.Add(Stored("Oak dining chair"));
        }

        using var again = new ListingIndex(path: Folder);
        Assert.Equal(IndexOrigin.Disk, again.OpenedFrom);
        Assert.Equal(1, again.Count);
        Assert.Single(Find(again, "chair"));
    }

    [Fact]
    public void PartsOfACopyACrashInterruptedAreIgnoredAndRemoved()
    {
        using (var index = new ListingIndex(path: Folder))
        {
            index.Add(Stored("Brass desk lamp"));
        }

        File.WriteAllBytes(Path.Combine(Folder, "segments_zz.part"), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(Folder, "_zz.cfs.part"), [1, 2, 3]);

        using var reopened = new ListingIndex(path: Folder);

        Assert.Equal(IndexOrigin.Disk, reopened.OpenedFrom);
        Assert.Equal(1, reopened.Count);
        Assert.DoesNotContain(System.IO.Directory.EnumerateFiles(Folder), f => f.EndsWith(".part", StringComparison.Ordinal));
    }
}
