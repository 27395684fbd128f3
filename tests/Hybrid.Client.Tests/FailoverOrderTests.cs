using Hybrid.Client.Connectivity;

namespace Hybrid.Client.Tests;

/// <summary>Which supernode a connection tries first: its seeds in order at the start, and after a loss, any survivor alike.</summary>
public sealed class FailoverOrderTests
{
    private static readonly string[] Known = ["http://a", "http://b", "http://c", "http://d"];

    [Fact]
    public void BeforeAnyLossTheSupernodesAreTriedInTheOrderKnown()
    {
        Assert.Equal(Known, FailoverOrder.Of(Known, null, new Random(1)));
    }

    [Fact]
    public void AfterALossThePeersOfTheLostSupernodeSpreadOverTheOthersAndTryTheLostOneLast()
    {
        var random = new Random(7);
        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var peer = 0; peer < 3_000; peer++)
        {
            var order = FailoverOrder.Of(Known, "http://a", random);
            Assert.Equal(Known.Order(), order.Order());
            Assert.Equal("http://a", order[^1]);
            first[order[0]] = first.GetValueOrDefault(order[0]) + 1;
        }

        // Each survivor is tried first by about a third of the peers (1,000 each; 3,000 draws keep
        // every share within 850 – 1,150 with this seed and far beyond any chance miss).
        Assert.Equal(["http://b", "http://c", "http://d"], first.Keys.Order());
        Assert.All(first.Values, count => Assert.InRange(count, 850, 1_150));
    }
}
