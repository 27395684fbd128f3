using Lucene.Net.Index;

namespace Hybrid.Index.Search;

/// <summary>
/// Lucene's tiered merge policy, with a shard's large segments (each holding a fifth of its
/// listings or more) left out of the merges that writes trigger. A live shard refreshes after most
/// writes, and every refresh writes a segment of a listing or two; the tiered policy, made for large
/// flushes, then merged a small shard's whole base segment again every few refreshes (48 of 55
/// merges for a shard of 25,000 listings). Small segments still merge among themselves as the
/// tiered policy decides; a large segment is merged again only by an explicit forced merge, or once
/// a fifth of it is deleted.
/// </summary>
internal sealed class ShardMergePolicy : TieredMergePolicy
{
    /// <summary>A segment holding at least 1 / <see cref="LargeShare"/> of the listings is large.</summary>
    public const int LargeShare = 5;

    public ShardMergePolicy() => NoCFSRatio = 0.0;

    /// <summary>Whether a segment of <paramref name="listings"/> is large in an index of <paramref name="total"/>.</summary>
    public static bool IsLarge(int listings, long total) => listings * (long)LargeShare >= total;

    public override MergeSpecification? FindMerges(MergeTrigger mergeTrigger, SegmentInfos infos)
    {
        ArgumentNullException.ThrowIfNull(infos);
        var writer = m_writer.Get();
        var total = infos.TotalDocCount;
        // The very segment objects of the writer's list (a merge naming a copy would be refused).
        var small = new SegmentInfos();
        foreach (var info in infos)
        {
            var count = info.Info.DocCount;
            if (!IsLarge(count, total) || writer.NumDeletedDocs(info) * (long)LargeShare >= count)
            {
                small.Add(info);
            }
        }

        return base.FindMerges(mergeTrigger, small);
    }
}
