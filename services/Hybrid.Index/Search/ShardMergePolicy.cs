using Lucene.Net.Index;

namespace Hybrid.Index.Search;

/// <summary>
/// Lucene's tiered merge policy, with a shard's large segments (each holding a fifth of its
/// listings or more) left out of the merges that writes trigger, and any segment that outweighs all
/// the smaller ones together. A live shard refreshes after most writes, and every refresh writes a
/// segment of a listing or two; the tiered policy, made for large flushes, then merged a small
/// shard's whole base segment again every few refreshes (48 of 55 merges for a shard of 25,000
/// listings), and at a million a segment of a tenth of the shard every ten writes. Small segments
/// merge among themselves, five at a time and five to a tier (Lucene's ten left more segments for
/// every query to visit); a large segment is merged again only by an explicit forced merge, or once
/// a fifth of it is deleted.
/// </summary>
internal sealed class ShardMergePolicy : TieredMergePolicy
{
    /// <summary>A segment holding at least 1 / <see cref="LargeShare"/> of the listings is large.</summary>
    public const int LargeShare = 5;

    public ShardMergePolicy()
    {
        NoCFSRatio = 0.0;
        SegmentsPerTier = 5;
        MaxMergeAtOnce = 5;
    }

    /// <summary>Whether a segment of <paramref name="listings"/> is large in an index of <paramref name="total"/>.</summary>
    public static bool IsLarge(int listings, long total) => listings * (long)LargeShare >= total;

    public override MergeSpecification? FindMerges(MergeTrigger mergeTrigger, SegmentInfos infos)
    {
        ArgumentNullException.ThrowIfNull(infos);
        var writer = m_writer.Get();
        var total = infos.TotalDocCount;
        // The very segment objects of the writer's list (a merge naming a copy would be refused),
        // smallest first.
        var candidates = new List<(SegmentCommitInfo Info, int Listings, bool Reclaims)>();
        foreach (var info in infos)
        {
            var count = info.Info.DocCount;
            var reclaims = writer.NumDeletedDocs(info) * (long)LargeShare >= count;
            if (!IsLarge(count, total) || reclaims)
            {
                candidates.Add((info, count, reclaims));
            }
        }

        // A segment holding more listings than all the smaller ones together is left out too, unless
        // a fifth of it is deleted: any merge it joined would rewrite more old listings than it folds
        // in. The tiered policy floors every segment under 2 MB at that size, so it saw a segment of a
        // tenth of a million listings as merely twice nine new ones, and merged it again with them
        // every ten writes. Left out until the smaller ones add up to it, a listing is rewritten at
        // most about log2(n) times on its way into a segment of n.
        var small = new SegmentInfos();
        long smaller = 0;
        foreach (var (info, listings, reclaims) in candidates.OrderBy(c => c.Listings))
        {
            if (reclaims || smaller == 0 || listings <= smaller)
            {
                small.Add(info);
            }

            smaller += listings;
        }

        return base.FindMerges(mergeTrigger, small);
    }
}
