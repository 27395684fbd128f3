using System.Collections.Frozen;
using System.Globalization;

namespace Hybrid.Index.Reputation;

/// <summary>
/// An order's value in one common unit (euros), for the weight a review carries in the trust graph.
/// Prices are converted with a table of rough reference rates: what matters is the order of
/// magnitude (the weight grows with the logarithm of the value), so 0.99 EUR, 1,000 JPY and 1,000
/// EUR weigh as what they are, not as 0, 1,000 and 1,000. Every supernode of a cluster should use
/// the same table; operators may replace or extend it (<c>Supernode:ReferenceRates</c>). A currency
/// the table does not know counts as value 0 (the smallest weight), never as a large number.
/// </summary>
public sealed class OrderValues
{
    /// <summary>Rough euros per unit of each currency (late 2026), shipped as the default table.</summary>
    public static readonly FrozenDictionary<string, double> DefaultRates = new Dictionary<string, double>(StringComparer.Ordinal)
    {
        ["EUR"] = 1, ["USD"] = 0.92, ["GBP"] = 1.17, ["CHF"] = 1.05, ["JPY"] = 0.0062, ["CNY"] = 0.13,
        ["CAD"] = 0.67, ["AUD"] = 0.60, ["NZD"] = 0.55, ["SEK"] = 0.087, ["NOK"] = 0.085, ["DKK"] = 0.134,
        ["PLN"] = 0.23, ["CZK"] = 0.040, ["HUF"] = 0.0025, ["RON"] = 0.20, ["INR"] = 0.011, ["BRL"] = 0.17,
        ["MXN"] = 0.050, ["KRW"] = 0.00068, ["SGD"] = 0.69, ["HKD"] = 0.12, ["ILS"] = 0.25, ["TRY"] = 0.027,
        ["ZAR"] = 0.050, ["UAH"] = 0.022,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private readonly FrozenDictionary<string, double> _rates;

    /// <summary>The default table, with <paramref name="overrides"/> ("USD=0.92,JPY=0.0062") replacing or adding rates.</summary>
    public OrderValues(string? overrides = null)
    {
        var rates = new Dictionary<string, double>(DefaultRates, StringComparer.Ordinal);
        var parsed = Parse(overrides ?? string.Empty, out var errors);
        foreach (var (currency, rate) in parsed)
        {
            rates[currency] = rate;
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(overrides));
        }

        _rates = rates.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>The value in euros of <paramref name="quantity"/> at <paramref name="units"/> + <paramref name="nanos"/> of <paramref name="currency"/>; 0 for an unknown currency.</summary>
    public double InEuros(string currency, long units, int nanos, uint quantity) =>
        _rates.TryGetValue(currency, out var rate) ? Math.Max(0, (units + (nanos / 1e9)) * quantity * rate) : 0;

    /// <summary>Problems in an override text, each naming the entry (empty when it is fine).</summary>
    public static IReadOnlyList<string> Check(string overrides)
    {
        _ = Parse(overrides, out var errors);
        return errors;
    }

    private static List<(string Currency, double Rate)> Parse(string text, out List<string> errors)
    {
        errors = [];
        var rates = new List<(string, double)>();
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = entry.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && parts[0].Length == 3 && parts[0].All(char.IsAsciiLetterUpper)
                && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) && rate > 0 && double.IsFinite(rate))
            {
                rates.Add((parts[0], rate));
            }
            else
            {
                errors.Add($"'{(entry.Length > 40 ? entry[..40] + "…" : entry)}' is not CUR=rate (three capital letters, a positive number of euros per unit)");
            }
        }

        return rates;
    }
}
