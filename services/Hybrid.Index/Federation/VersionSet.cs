using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Hybrid.Index.Federation;

/// <summary>One item of a set reconciled between clusters: an object's id and the version held.</summary>
/// <param name="Id">The object's id (a listing id).</param>
/// <param name="Version">The version held.</param>
public readonly record struct VersionedId(string Id, ulong Version);

/// <summary>What one side holds in a range of ids: how many items, and the sum of their hashes.</summary>
/// <param name="Count">Items in the range.</param>
/// <param name="Sum">The sum of the items' 64-bit hashes, modulo 2^64.</param>
public readonly record struct Fingerprint(long Count, ulong Sum);

/// <summary>A range of ids, <c>[Lower, Upper)</c> in ordinal order; an empty <c>Upper</c> is the end.</summary>
/// <param name="Lower">The first id the range may hold (empty: from the start).</param>
/// <param name="Upper">The first id after the range (empty: to the end).</param>
public readonly record struct IdRange(string Lower, string Upper)
{
    /// <summary>Every id.</summary>
    public static readonly IdRange All = new(string.Empty, string.Empty);

    /// <summary>Whether the range is well formed: its upper bound (when set) is above its lower bound.</summary>
    public bool IsValid => Upper.Length == 0 || string.CompareOrdinal(Lower, Upper) < 0;
}

/// <summary>
/// A sorted, immutable set of (id, version) items for range-based set reconciliation (the scheme of
/// the Negentropy protocol): any range's fingerprint is the count and the sum of its items' hashes,
/// read from prefix sums in O(log n), so two sides find where they differ by comparing fingerprints
/// and splitting only the ranges that differ.
/// </summary>
public sealed class VersionSet
{
    private readonly VersionedId[] _items;
    private readonly ulong[] _prefix;

    /// <summary>The set of <paramref name="items"/> (one version per id: the highest given).</summary>
    public VersionSet(IEnumerable<VersionedId> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        // Sorted by id, the highest version first; then the first of each id is kept.
        var sorted = items.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Id, b.Id) is var byId && byId != 0 ? byId : b.Version.CompareTo(a.Version));
        var kept = 0;
        for (var i = 0; i < sorted.Length; i++)
        {
            if (kept == 0 || sorted[kept - 1].Id != sorted[i].Id)
            {
                sorted[kept++] = sorted[i];
            }
        }

        _items = sorted[..kept];
        _prefix = new ulong[_items.Length + 1];
        for (var i = 0; i < _items.Length; i++)
        {
            _prefix[i + 1] = unchecked(_prefix[i] + Hash(_items[i]));
        }
    }

    /// <summary>Items in the set.</summary>
    public int Count => _items.Length;

    /// <summary>The version held of <paramref name="id"/>, or null.</summary>
    public ulong? VersionOf(string id)
    {
        var at = LowerBound(id);
        return at < _items.Length && _items[at].Id == id ? _items[at].Version : null;
    }

    /// <summary>The count and hash sum of the items in <paramref name="range"/>.</summary>
    public Fingerprint FingerprintOf(IdRange range)
    {
        var (from, to) = Bounds(range);
        return new Fingerprint(to - from, unchecked(_prefix[to] - _prefix[from]));
    }

    /// <summary>The items in <paramref name="range"/>, in order.</summary>
    public ReadOnlySpan<VersionedId> ItemsIn(IdRange range)
    {
        var (from, to) = Bounds(range);
        return _items.AsSpan(from, to - from);
    }

    /// <summary>
    /// <paramref name="range"/> cut into at most <paramref name="parts"/> consecutive ranges holding
    /// about as many of this set's items each; together they cover the range exactly. Each cut is
    /// the shortest prefix of the first id after it that still sorts above the id before it (as
    /// Negentropy does), so bounds cost a few characters, not whole ids.
    /// </summary>
    public IReadOnlyList<IdRange> Split(IdRange range, int parts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parts, 2);
        var (from, to) = Bounds(range);
        var count = to - from;
        var bounds = new List<string> { range.Lower };
        for (var k = 1; k < parts; k++)
        {
            var at = from + (int)((long)count * k / parts);
            if (at == from)
            {
                continue;
            }

            var id = ShortestAbove(_items[at - 1].Id, _items[at].Id);
            if (string.CompareOrdinal(id, bounds[^1]) > 0)
            {
                bounds.Add(id);
            }
        }

        bounds.Add(range.Upper);
        return [.. Enumerable.Range(0, bounds.Count - 1).Select(i => new IdRange(bounds[i], bounds[i + 1]))];
    }

    /// <summary>The shortest prefix of <paramref name="id"/> that sorts after <paramref name="before"/> (which sorts before <paramref name="id"/>).</summary>
    private static string ShortestAbove(string before, string id)
    {
        var common = 0;
        while (common < before.Length && common < id.Length && before[common] == id[common])
        {
            common++;
        }

        return id[..Math.Min(id.Length, common + 1)];
    }

    /// <summary>An item's 64-bit hash: the first 8 bytes of SHA-256 over its id and version.</summary>
    public static ulong Hash(VersionedId item)
    {
        var idBytes = Encoding.UTF8.GetByteCount(item.Id);
        Span<byte> input = idBytes <= 256 ? stackalloc byte[idBytes + 9] : new byte[idBytes + 9];
        Encoding.UTF8.GetBytes(item.Id, input);
        input[idBytes] = 0;
        BinaryPrimitives.WriteUInt64BigEndian(input[(idBytes + 1)..], item.Version);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(input, digest);
        return BinaryPrimitives.ReadUInt64BigEndian(digest);
    }

    /// <summary>The 8 bytes of a fingerprint's sum, as sent.</summary>
    public static byte[] SumBytes(ulong sum)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, sum);
        return bytes;
    }

    /// <summary>A sum read from its 8 bytes; false when it is not 8 bytes long.</summary>
    public static bool TryReadSum(ReadOnlySpan<byte> bytes, out ulong sum)
    {
        sum = default;
        if (bytes.Length != 8)
        {
            return false;
        }

        sum = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        return true;
    }

    private (int From, int To) Bounds(IdRange range)
    {
        var from = range.Lower.Length == 0 ? 0 : LowerBound(range.Lower);
        var to = range.Upper.Length == 0 ? _items.Length : LowerBound(range.Upper);
        return (from, Math.Max(from, to));
    }

    /// <summary>The index of the first item whose id is at or after <paramref name="id"/>.</summary>
    private int LowerBound(string id)
    {
        int low = 0, high = _items.Length;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (string.CompareOrdinal(_items[middle].Id, id) < 0)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }
}

/// <summary>One side's answer about a range the other side described.</summary>
/// <param name="Range">The range asked about.</param>
/// <param name="Same">Both sides hold the same items in it.</param>
/// <param name="Items">When the answering side holds few items there: all of them.</param>
/// <param name="Split">Otherwise: the range cut in parts, each with the answering side's fingerprint.</param>
public sealed record RangeAnswer(IdRange Range, bool Same, IReadOnlyList<VersionedId> Items, IReadOnlyList<(IdRange Range, Fingerprint Fingerprint)> Split);

/// <summary>
/// Range-based set reconciliation in the pulling direction: the puller describes ranges by their
/// fingerprints, the holder answers each (same, its items, or a split with its fingerprints), and the
/// puller keeps asking about the parts that still differ until it knows every item it lacks.
/// </summary>
public static class Reconciliation
{
    /// <summary>A range holding at most this many items is answered with its items.</summary>
    public const int ItemsThreshold = 8;

    /// <summary>A range the puller holds nothing of is answered with its items up to this many (nothing there to compare).</summary>
    public const int ItemsWhenTheyHaveNone = 128;

    /// <summary>Parts a differing range is split into.</summary>
    public const int Fanout = 16;

    /// <summary>The holder's answer about <paramref name="range"/>, which the puller fingerprinted as <paramref name="theirs"/>.</summary>
    public static RangeAnswer Answer(VersionSet mine, IdRange range, Fingerprint theirs)
    {
        ArgumentNullException.ThrowIfNull(mine);
        var own = mine.FingerprintOf(range);
        if (own == theirs)
        {
            return new RangeAnswer(range, true, [], []);
        }

        if (own.Count <= ItemsThreshold || (theirs.Count == 0 && own.Count <= ItemsWhenTheyHaveNone))
        {
            return new RangeAnswer(range, false, [.. mine.ItemsIn(range)], []);
        }

        return new RangeAnswer(range, false, [], [.. mine.Split(range, Fanout).Select(r => (r, mine.FingerprintOf(r)))]);
    }

    /// <summary>
    /// What the puller makes of answers: the ids the holder has at a newer version than the puller
    /// holds (<paramref name="held"/>: null when it holds none, a withdrawn one counts), and the
    /// ranges of <paramref name="mine"/> to ask about next.
    /// </summary>
    public static (List<string> Wanted, List<IdRange> Next) Read(VersionSet mine, Func<string, ulong?> held, IEnumerable<RangeAnswer> answers)
    {
        ArgumentNullException.ThrowIfNull(mine);
        ArgumentNullException.ThrowIfNull(held);
        ArgumentNullException.ThrowIfNull(answers);
        var wanted = new List<string>();
        var next = new List<IdRange>();
        foreach (var answer in answers)
        {
            foreach (var item in answer.Items)
            {
                if (held(item.Id) is not { } version || version < item.Version)
                {
                    wanted.Add(item.Id);
                }
            }

            foreach (var (range, fingerprint) in answer.Split)
            {
                if (mine.FingerprintOf(range) != fingerprint && fingerprint.Count > 0)
                {
                    next.Add(range);
                }
            }
        }

        return (wanted, next);
    }
}
