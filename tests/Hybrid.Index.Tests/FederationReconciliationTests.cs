using CsCheck;
using Hybrid.Index.Federation;

namespace Hybrid.Index.Tests;

/// <summary>
/// Range-based reconciliation between clusters: whatever two sets hold, the puller learns exactly
/// the ids the holder has that it lacks or holds at an older version, in a bounded number of rounds,
/// and for small differences without the holder listing its whole set.
/// </summary>
public sealed class FederationReconciliationTests
{
    /// <summary>Runs the pull until nothing is left to ask; returns what was wanted, the rounds and the items the holder listed.</summary>
    private static (HashSet<string> Wanted, int Rounds, int Listed) Pull(VersionSet holder, VersionSet puller)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        var pending = new List<IdRange> { IdRange.All };
        var rounds = 0;
        var listed = 0;
        while (pending.Count > 0)
        {
            Assert.True(++rounds <= 16, "reconciliation did not end within 16 rounds");
            var answers = pending.Select(r => Reconciliation.Answer(holder, r, puller.FingerprintOf(r))).ToList();
            listed += answers.Sum(a => a.Items.Count);
            var (want, next) = Reconciliation.Read(puller, puller.VersionOf, answers);
            wanted.UnionWith(want);
            pending = next;
        }

        return (wanted, rounds, listed);
    }

    private static readonly Gen<string> Ids = Gen.String[Gen.Char['a', 'z'], 4, 12];

    [Fact]
    public void FederationReconciliationFindsExactlyWhatThePullerLacksOrHoldsOlder()
    {
        var items = Gen.Select(Ids, Gen.ULong[1, 5]).Array[0, 400];
        Gen.Select(items, items, Gen.Int[0, 100]).Sample((common, extra, bumpEvery) =>
        {
            var holderItems = common.Concat(extra).Select(i => new VersionedId(i.Item1, i.Item2)).ToList();
            // The puller holds the common part, some of it at other versions, and nothing of the extra part.
            var pullerItems = common.Select((i, k) => new VersionedId(i.Item1, (k % (bumpEvery + 2)) switch
            {
                0 => i.Item2 + 1,   // the puller's is newer
                1 => i.Item2 - 1,   // the holder's is newer
                _ => i.Item2,
            })).ToList();
            var holder = new VersionSet(holderItems);
            var puller = new VersionSet(pullerItems);

            var (wanted, _, _) = Pull(holder, puller);

            var expected = holderItems.Select(i => i.Id).Distinct()
                .Where(id => puller.VersionOf(id) is not { } v || v < holder.VersionOf(id))
                .ToHashSet(StringComparer.Ordinal);
            Assert.Equal(expected.Order(StringComparer.Ordinal), wanted.Order(StringComparer.Ordinal));
        });
    }

    [Fact]
    public void FederationReconciliationOfNearlyEqualSetsListsFewItems()
    {
        var ids = Enumerable.Range(0, 100_000).Select(i => $"listing-{i:D7}").ToList();
        var holder = new VersionSet(ids.Select(id => new VersionedId(id, 1)));
        // 0.1 %: a hundred listings the puller lacks, spread over the set.
        var puller = new VersionSet(ids.Where((_, i) => i % 1000 != 7).Select(id => new VersionedId(id, 1)));

        var (wanted, rounds, listed) = Pull(holder, puller);

        Assert.Equal(100, wanted.Count);
        Assert.All(wanted, id => Assert.Null(puller.VersionOf(id)));
        Assert.True(listed < 100 * Reconciliation.ItemsThreshold, $"the holder listed {listed} items for 100 differences");
        Assert.True(rounds <= 6, $"{rounds} rounds for 100 differences in 100,000");
    }

    [Fact]
    public void FederationReconciliationOfEqualSetsEndsAtOnce()
    {
        var items = Enumerable.Range(0, 1000).Select(i => new VersionedId($"id-{i}", (ulong)i)).ToList();
        var (wanted, rounds, listed) = Pull(new VersionSet(items), new VersionSet(items.AsEnumerable().Reverse()));
        Assert.Empty(wanted);
        Assert.Equal(1, rounds);
        Assert.Equal(0, listed);
    }
}
