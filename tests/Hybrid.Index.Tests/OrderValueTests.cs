using Hybrid.Index.Reputation;

namespace Hybrid.Index.Tests;

/// <summary>A review's weight grows with the order's value in one unit: cents count, and currencies are converted.</summary>
public sealed class OrderValueTests
{
    private readonly OrderValues _values = new();

    [Fact]
    public void CentsCountAndCurrenciesAreWeighedByWhatTheyAreWorth()
    {
        var cents = _values.InEuros("EUR", 0, 990_000_000, 1);
        var yen = _values.InEuros("JPY", 1000, 0, 1);
        var euros = _values.InEuros("EUR", 1000, 0, 1);

        Assert.Equal(0.99, cents, 6);
        Assert.InRange(yen, 3, 12);
        Assert.Equal(1000, euros, 6);
        Assert.True(TrustGraph.Contribution(5, cents) > TrustGraph.Contribution(5, 0));
        Assert.True(TrustGraph.Contribution(5, euros) > 2 * TrustGraph.Contribution(5, yen));
        Assert.Equal(3 * 12.5, _values.InEuros("EUR", 12, 500_000_000, 3), 6);
    }

    [Fact]
    public void AnUnknownCurrencyWeighsLeastAndOperatorsCanAddRates()
    {
        Assert.Equal(0, _values.InEuros("XTS", 1_000_000, 0, 1));
        var extended = new OrderValues("XTS=2, USD=1");
        Assert.Equal(2_000_000, extended.InEuros("XTS", 1_000_000, 0, 1));
        Assert.Equal(10, extended.InEuros("USD", 10, 0, 1));
    }

    [Theory]
    [InlineData("USD")]
    [InlineData("usd=1")]
    [InlineData("USD=-1")]
    [InlineData("USD=NaN")]
    public void AnOverrideThatIsNotCurrencyEqualsRateIsNamed(string overrides)
    {
        var problem = Assert.Single(OrderValues.Check(overrides));
        Assert.Contains(overrides.Trim(), problem, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new OrderValues(overrides));
    }
}
