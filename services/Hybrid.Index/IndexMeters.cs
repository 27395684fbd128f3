using System.Diagnostics.Metrics;

namespace Hybrid.Index;

/// <summary>The index's own .NET meter; the supernode exports it to Prometheus with the rest.</summary>
public static class IndexMeters
{
    /// <summary>The meter name (instrument names under it become <c>hybrid_…</c> series).</summary>
    public const string Name = "Hybrid";

    private static readonly Meter Meter = new(Name);

    /// <summary>Segments of the search indexes open on this silo: each query visits every one, so many small ones slow search.</summary>
    public static ObservableGauge<int> SearchSegments { get; } = Meter.CreateObservableGauge("search.index.segments", Search.ListingIndex.SegmentsOpenHere, description: "Lucene segments of the search shards open on this supernode.");

    /// <summary>Deleted listings' documents the search indexes still hold until a merge drops them: each query still walks their postings.</summary>
    public static ObservableGauge<long> SearchDeleted { get; } = Meter.CreateObservableGauge("search.index.deleted", Search.ListingIndex.DeletedOpenHere, description: "Documents of replaced or removed listings still held in the search shards' segments until merged away.");

    /// <summary>Listings of result pages served, by where they were read from (the page cache, or the listing store).</summary>
    public static Counter<long> SearchPageListings { get; } = Meter.CreateCounter<long>("search.page.listings", description: "Listings of search result pages, by source: cache (recent pages kept in memory) or store.");

    /// <summary>
    /// Where a search's time goes, by stage: <c>shard.call</c> (a shard's answer as the fan-out sees it),
    /// <c>shard.queued</c> (waiting for a thread-pool thread to search on), <c>shard.search</c> (Lucene
    /// itself), <c>shard.resumed</c> (waiting for the shard's turn again to answer), <c>page</c> (reading
    /// the page's listings). Each is recorded where it happens: on a supernode that holds its shards, a
    /// call's time beyond its shard's three stages is Orleans' own.
    /// </summary>
    public static Histogram<double> SearchStageSeconds { get; } = Meter.CreateHistogram<double>(SearchStageSecondsName, unit: "s", description: "Time a search spends in each stage: shard.call (one shard's answer, as the fan-out sees it), shard.queued (waiting for a thread to search on), shard.search (Lucene), shard.resumed (waiting for the shard's turn to answer), page (reading the page's listings).");

    /// <summary>The instrument name of <see cref="SearchStageSeconds"/>, for exporters that choose its buckets.</summary>
    public const string SearchStageSecondsName = "search.stage.seconds";

    /// <summary>Records <paramref name="since"/> (a <see cref="System.Diagnostics.Stopwatch"/> timestamp) to now under <paramref name="stage"/>; returns now.</summary>
    public static long RecordStage(string stage, long since)
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        SearchStageSeconds.Record(System.Diagnostics.Stopwatch.GetElapsedTime(since, now).TotalSeconds, new KeyValuePair<string, object?>("stage", stage));
        return now;
    }

    /// <summary>Times a quiet search shard folded its small segments into one.</summary>
    public static Counter<long> SearchCompactions { get; } = Meter.CreateCounter<long>("search.index.compactions", description: "Times a search shard, quiet since its last sweep, folded its small Lucene segments into one.");

    /// <summary>Sealed items held by the mailboxes active on this silo.</summary>
    public static UpDownCounter<long> MailboxItems { get; } = Meter.CreateUpDownCounter<long>("mailbox.items", description: "Sealed items held by the mailboxes active on this supernode.");
}
