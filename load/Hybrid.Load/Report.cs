using System.Globalization;
using System.Text;
using System.Text.Json;
using HdrHistogram;

namespace Hybrid.Load;

/// <summary>Latency series in microseconds, printed as a table and written as JSON and Markdown.</summary>
internal sealed class Report(string scenario, string baselineName)
{
    private readonly List<(string Name, LongHistogram Histogram)> _series = [];
    private readonly List<(string Name, string Value)> _facts = [];

    /// <summary>A figure that is not a latency (throughput, memory, ratios), reported as given.</summary>
    public void Fact(string name, string value)
    {
        _facts.Add((name, value));
        Console.WriteLine($"{name}: {value}");
    }

    public LongHistogram Series(string name)
    {
        var histogram = new LongHistogram(TimeSpan.FromMinutes(5).Ticks / 10, 3); // microseconds, up to 5 min
        _series.Add((name, histogram));
        return histogram;
    }

    /// <summary>Records one latency; safe from concurrent tasks (HdrHistogram's LongHistogram is not).</summary>
    public static void Record(LongHistogram histogram, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        lock (histogram)
        {
            histogram.RecordValue(Math.Max(1, (long)elapsed.TotalMicroseconds));
        }
    }

    public async Task WriteAsync(string folder, IReadOnlyDictionary<string, string> parameters)
    {
        // A series nothing was recorded in (a fault that did not happen in a short run) is left out.
        _series.RemoveAll(s => s.Histogram.TotalCount == 0 && s.Name != baselineName);
        var baseline = _series.Single(s => s.Name == baselineName).Histogram.GetValueAtPercentile(50);
        var rows = _series.Select(s => new
        {
            name = s.Name,
            count = s.Histogram.TotalCount,
            p50_ms = Ms(s.Histogram.GetValueAtPercentile(50)),
            p90_ms = Ms(s.Histogram.GetValueAtPercentile(90)),
            p99_ms = Ms(s.Histogram.GetValueAtPercentile(99)),
            max_ms = Ms(s.Histogram.GetMaxValue()),
            p50_vs_baseline = Math.Round((double)s.Histogram.GetValueAtPercentile(50) / baseline, 2),
            p99_vs_baseline = Math.Round((double)s.Histogram.GetValueAtPercentile(99) / baseline, 2),
        }).ToList();

        var machine = $"{Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1 << 30)} GiB, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}";
        var date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var markdown = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"### {scenario} ({date}; {machine})")
            .AppendLine()
            .AppendLine(CultureInfo.InvariantCulture, $"Parameters: {string.Join(", ", parameters.Select(p => $"{p.Key}={p.Value}"))}. Baseline: `{baselineName}` (p50, same run).")
            .AppendLine()
            .AppendLine("| series | n | p50 ms | p90 ms | p99 ms | max ms | p50 / baseline | p99 / baseline |")
            .AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            markdown.AppendLine(CultureInfo.InvariantCulture, $"| {r.name} | {r.count} | {r.p50_ms} | {r.p90_ms} | {r.p99_ms} | {r.max_ms} | {r.p50_vs_baseline} | {r.p99_vs_baseline} |");
        }

        if (_facts.Count > 0)
        {
            markdown.AppendLine().AppendLine("| figure | value |").AppendLine("|---|---:|");
            foreach (var (name, value) in _facts)
            {
                markdown.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {value} |");
            }
        }

        Console.WriteLine();
        Console.WriteLine(markdown.ToString());
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, $"{scenario}.md"), markdown.ToString());
        await File.WriteAllTextAsync(
            Path.Combine(folder, $"{scenario}.json"),
            JsonSerializer.Serialize(new { scenario, date, machine, parameters, baseline = baselineName, series = rows, facts = _facts.ToDictionary(f => f.Name, f => f.Value) }, JsonOptions));
        WriteChart(Path.Combine(folder, $"{scenario}.png"));
        Console.WriteLine($"reports: {Path.Combine(folder, scenario)}.md, .json, .png");
    }

    /// <summary>p50 and p99 of every series side by side, as a PNG (rendered headless).</summary>
    private void WriteChart(string path)
    {
        var plot = new ScottPlot.Plot();
        var bars = new List<ScottPlot.Bar>();
        var ticks = new List<ScottPlot.Tick>();
        for (var i = 0; i < _series.Count; i++)
        {
            var h = _series[i].Histogram;
            if (h.TotalCount == 0)
            {
                continue;
            }

            bars.Add(new ScottPlot.Bar { Position = (i * 3) + 0, Value = Ms(h.GetValueAtPercentile(50)), FillColor = ScottPlot.Colors.SteelBlue });
            bars.Add(new ScottPlot.Bar { Position = (i * 3) + 1, Value = Ms(h.GetValueAtPercentile(99)), FillColor = ScottPlot.Colors.OrangeRed });
            var label = _series[i].Name.Length > 24 ? _series[i].Name[..24] + "…" : _series[i].Name;
            ticks.Add(new ScottPlot.Tick((i * 3) + 0.5, label));
        }

        plot.Add.Bars(bars);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. ticks]);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 11;
        plot.Axes.Left.Label.Text = "latency, ms (blue p50, red p99)";
        plot.Title($"{scenario}: latency by series");
        plot.Axes.Margins(bottom: 0);
        plot.SavePng(path, 1200, 700);
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private static double Ms(long micros) => Math.Round(micros / 1000.0, 1);
}
