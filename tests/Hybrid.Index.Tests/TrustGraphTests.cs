using Hybrid.Index.Reputation;

namespace Hybrid.Index.Tests;

public sealed class TrustGraphTests
{
    private static readonly double Five = TrustGraph.Contribution(5, 20);

    [Fact]
    public void ARingThatOnlyTradesWithItselfGainsLessThanAnHonestSellerWithRealTrades()
    {
        var graph = new TrustGraph();
        string[] seeds = ["seed-1", "seed-2"];
        var honest = "honest";
        for (var b = 0; b < 10; b++)
        {
            // Pre-trusted sellers vouch for their buyers; those buyers then rate the honest seller.
            graph.Add(seeds[b % 2], $"buyer-{b}", Five);
            graph.Add($"buyer-{b}", honest, Five);
        }

        for (var i = 0; i < 50; i++)
        {
            graph.Add($"ring-{i}", $"ring-{(i + 1) % 50}", Five);
            graph.Add($"ring-{(i + 1) % 50}", $"ring-{i}", Five);
        }

        var trust = graph.Compute(seeds);

        var ringBest = Enumerable.Range(0, 50).Max(i => trust.Trust[$"ring-{i}"]);
        Assert.True(trust.Trust[honest] > 100 * ringBest, $"honest {trust.Trust[honest]:E2} vs best ring member {ringBest:E2}");
        Assert.Equal(1.0, trust.Trust.Values.Sum(), 6);
        Assert.Equal(100, trust.ScoreOf(trust.Trust.MaxBy(t => t.Value).Key));
        Assert.Equal(0, trust.ScoreOf("ring-7"));
    }

    [Fact]
    public void BadReviewsRemoveTrustAndAWarmStartConvergesInFewerSteps()
    {
        var graph = new TrustGraph();
        for (var i = 0; i < 200; i++)
        {
            graph.Add($"p{i}", $"p{(i * 7 + 3) % 200}", Five);
            graph.Add($"p{i}", $"p{(i * 13 + 5) % 200}", Five);
        }

        var cold = graph.Compute(["p0"]);
        graph.Add("p0", "p10", TrustGraph.Contribution(1, 20) - Five); // p0 changed its review of p10 from 5 stars to 1... if it had one
        graph.Add("p1", "p2", Five);
        var warm = graph.Compute(["p0"], previous: cold);

        Assert.True(warm.Iterations < cold.Iterations, $"warm start took {warm.Iterations} iterations, cold {cold.Iterations}");
        Assert.True(TrustGraph.Contribution(1, 20) < 0);
        Assert.True(TrustGraph.Contribution(5, 1000) > TrustGraph.Contribution(5, 1), "a larger trade should weigh more");
    }
}
