using Google.Protobuf;
using Hybrid.Index.Federation;
using Hybrid.Index.Reputation;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;
using IdRange = Hybrid.Index.Federation.IdRange;

namespace Hybrid.Supernode.Federation;

/// <summary>Reconciliation ranges as they travel, and the checks on what another cluster sent.</summary>
public static class FederationWire
{
    /// <summary>Ranges in one reconcile request at most.</summary>
    public const int MaxRanges = 64;

    /// <summary>Listing or review ids in one fetch at most.</summary>
    public const int MaxFetch = 256;

    /// <summary>Items one range's answer may list: what an honest answer lists at most.</summary>
    public const int MaxItemsPerAnswer = Reconciliation.ItemsWhenTheyHaveNone;

    private const int MaxBoundLength = 64;

    public static VersionRange ToWire(IdRange range, Fingerprint fingerprint) => new()
    {
        Lower = range.Lower,
        Upper = range.Upper,
        Count = fingerprint.Count,
        Sum = ByteString.CopyFrom(VersionSet.SumBytes(fingerprint.Sum)),
    };

    /// <summary>The holder's answer about one range, as sent.</summary>
    public static RangeReply ToWire(RangeAnswer answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        var wire = new RangeReply { Same = answer.Same };
        wire.Items.AddRange(answer.Items.Select(item => new ListingVersion { ListingId = item.Id, Version = item.Version }));
        wire.Split.AddRange(answer.Split.Select(part => ToWire(part.Range, part.Fingerprint)));
        return wire;
    }

    /// <summary>A range from the wire, or why it is not one.</summary>
    public static (IdRange Range, Fingerprint Fingerprint)? FromWire(VersionRange? wire, out string? problem)
    {
        problem = null;
        if (wire is null)
        {
            problem = "a range is missing";
            return null;
        }

        if (wire.Lower.Length > MaxBoundLength || wire.Upper.Length > MaxBoundLength)
        {
            problem = $"a range bound is longer than {MaxBoundLength} characters";
            return null;
        }

        var range = new IdRange(wire.Lower, wire.Upper);
        if (!range.IsValid)
        {
            problem = $"range ['{wire.Lower}', '{wire.Upper}') is empty or reversed";
            return null;
        }

        if (wire.Count < 0 || !VersionSet.TryReadSum(wire.Sum.Span, out var sum))
        {
            problem = "a range's count is negative or its sum is not 8 bytes";
            return null;
        }

        return (range, new Fingerprint(wire.Count, sum));
    }

    /// <summary>
    /// The answers a peer cluster gave to <paramref name="asked"/>, checked: one per range asked, in
    /// order, with items and parts inside the range asked. Null, with the problem, when they are not.
    /// </summary>
    public static List<RangeAnswer>? ReadReply(ObjectSet set, IReadOnlyList<IdRange> asked, ReconcileReply reply, out string? problem)
    {
        problem = null;
        if (reply.Ranges.Count != asked.Count)
        {
            problem = $"answered {reply.Ranges.Count} ranges, {asked.Count} were asked about";
            return null;
        }

        var answers = new List<RangeAnswer>(asked.Count);
        for (var i = 0; i < asked.Count; i++)
        {
            var wire = reply.Ranges[i];
            var range = asked[i];
            if (wire.Items.Count > MaxItemsPerAnswer || wire.Split.Count > Reconciliation.Fanout)
            {
                problem = $"answered a range with {wire.Items.Count} items and {wire.Split.Count} parts (at most {MaxItemsPerAnswer} and {Reconciliation.Fanout})";
                return null;
            }

            var items = new List<VersionedId>(wire.Items.Count);
            foreach (var item in wire.Items)
            {
                if (!IsItemId(set, item.ListingId) || !Inside(range, item.ListingId))
                {
                    problem = $"listed '{Shorten(item.ListingId)}', which is not an item of the {set} set inside the range asked about";
                    return null;
                }

                items.Add(new VersionedId(item.ListingId, item.Version));
            }

            var parts = new List<(IdRange, Fingerprint)>(wire.Split.Count);
            foreach (var part in wire.Split)
            {
                if (FromWire(part, out var partProblem) is not { } read)
                {
                    problem = partProblem;
                    return null;
                }

                if (!Inside(range, read.Range))
                {
                    problem = "split a range into parts outside it";
                    return null;
                }

                parts.Add(read);
            }

            answers.Add(new RangeAnswer(range, wire.Same, items, parts));
        }

        return answers;
    }

    /// <summary>Whether <paramref name="id"/> can be an item of <paramref name="set"/>.</summary>
    public static bool IsItemId(ObjectSet set, string id) => set switch
    {
        ObjectSet.Listings => ListingRules.IsListingId(id, out _),
        ObjectSet.Reviews => Reviews.IsReviewId(ReviewCatalog.ReviewIdOf(id)),
        _ => false,
    };

    private static bool Inside(IdRange range, string id) =>
        string.CompareOrdinal(id, range.Lower) >= 0 && (range.Upper.Length == 0 || string.CompareOrdinal(id, range.Upper) < 0);

    private static bool Inside(IdRange outer, IdRange inner) =>
        string.CompareOrdinal(inner.Lower, outer.Lower) >= 0
        && (outer.Upper.Length == 0 || (inner.Upper.Length > 0 && string.CompareOrdinal(inner.Upper, outer.Upper) <= 0));

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
