using Prometheus;

namespace Hybrid.Supernode.Ops;

/// <summary>
/// Each garbage collection's pause, by kind, as <c>hybrid_gc_pause_seconds</c>: the runtime's own
/// metrics give only the total, and a search's or a session's tail is set by the longest pauses,
/// not by their sum. Read from <see cref="GC.GetGCMemoryInfo(GCKind)"/>, which keeps the last
/// collection of each kind, every time <see cref="Check"/> is called (by the scheduling-delay
/// sampler, every 50 ms); two collections of one kind between two checks count as the later one.
/// </summary>
internal sealed class CollectorPauses
{
    private static readonly Histogram Pauses = Metrics.CreateHistogram(
        "hybrid_gc_pause_seconds",
        "How long each garbage collection paused this supernode, by kind (ephemeral: generations 0 and 1; full: blocking generation 2; background: the pauses of a background generation 2). Everything in flight waits that long.",
        new HistogramConfiguration { LabelNames = ["kind"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });

    private static readonly (GCKind Kind, string Label)[] Kinds = [(GCKind.Ephemeral, "ephemeral"), (GCKind.FullBlocking, "full"), (GCKind.Background, "background")];

    private readonly long[] _seen = new long[Kinds.Length];

    public CollectorPauses()
    {
        // Collections before this started (the supernode's start) are not counted.
        for (var i = 0; i < Kinds.Length; i++)
        {
            _seen[i] = GC.GetGCMemoryInfo(Kinds[i].Kind).Index;
        }
    }

    public void Check()
    {
        for (var i = 0; i < Kinds.Length; i++)
        {
            var info = GC.GetGCMemoryInfo(Kinds[i].Kind);
            if (info.Index == _seen[i])
            {
                continue;
            }

            _seen[i] = info.Index;
            var pause = TimeSpan.Zero;
            foreach (var part in info.PauseDurations)
            {
                pause += part;
            }

            Pauses.WithLabels(Kinds[i].Label).Observe(pause.TotalSeconds);
        }
    }
}
