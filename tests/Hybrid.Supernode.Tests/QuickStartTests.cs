using System.Text.RegularExpressions;
using Hybrid.Testing;
using SkiaSharp;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// The README's quick start, run as written: its commands are read from the README itself, each
/// terminal's <c>hybrid</c> lines run in that terminal's home, and the ids the commands print fill
/// the placeholders of the ones after. Only the supernode of terminal 1 is the fixture's (the same
/// program), at its own port.
/// </summary>
public sealed partial class QuickStartTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task TheQuickStartInTheReadmeEndsInACompletedAndReviewedTrade()
    {
        var lines = QuickStartBlock(await File.ReadAllTextAsync(Path.Combine(RepositoryRoot(), "README.md")));
        var photo = _temp.Sub("chair.jpg");
        WritePhoto(photo);
        var users = new Dictionary<string, CliRunner>(StringComparer.Ordinal);
        var daemons = new List<DaemonProcess>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        CliRunner? current = null;
        var ran = 0;
        try
        {
            foreach (var raw in lines)
            {
                var line = raw.Trim();
                if (line.StartsWith("export HYBRID_HOME=", StringComparison.Ordinal))
                {
                    var name = line["export HYBRID_HOME=".Length..];
                    current = users.TryGetValue(name, out var known) ? known : users[name] = new CliRunner(_temp.Sub(Path.GetFileName(name)));
                    continue;
                }

                if (line.StartsWith("# terminal", StringComparison.Ordinal) && users.Count > 0)
                {
                    // A terminal seen before: back to its user (terminal 2 is the first export, 3 the second).
                    var terminal = int.Parse(line.Split(' ')[2].Split(':')[0], System.Globalization.CultureInfo.InvariantCulture);
                    current = terminal >= 2 && terminal - 2 < users.Count ? users.Values.ElementAt(terminal - 2) : current;
                    continue;
                }

                if (!line.StartsWith("hybrid ", StringComparison.Ordinal))
                {
                    continue;
                }

                Assert.NotNull(current);
                var command = Code(line).Replace("http://127.0.0.1:5000", fixture.Node.GrpcUrl, StringComparison.Ordinal).Replace("chair.jpg", photo, StringComparison.Ordinal);
                foreach (var (placeholder, value) in values)
                {
                    command = command.Replace(placeholder, value, StringComparison.Ordinal);
                }

                var args = Split(command)[1..];
                if (args is ["peer", "run", .. var daemonArgs, "&"])
                {
                    daemons.Add(await DaemonProcess.StartAsync(current, daemonArgs));
                    continue;
                }

                var result = await current.RunAsync(TimeSpan.FromSeconds(60), args);
                Assert.True(result.ExitCode == 0, $"'{line}' exited {result.ExitCode}: {result.Stderr}");
                ran++;
                if (args is ["listing", "publish", ..])
                {
                    values["LISTING_ID"] = result.Stdout.Trim();
                }
                else if (args is ["order", "create", ..])
                {
                    values["ORDER_ID"] = result.Stdout.Trim();
                }
                else if (args is ["search", ..])
                {
                    // The same command, read as JSON: the listing the seller published is among the results.
                    var found = (await current.RunAsync(TimeSpan.FromSeconds(60), [.. args, "--json"])).Stdout;
                    Assert.Contains(values["LISTING_ID"], found, StringComparison.Ordinal);
                }
                else if (args is ["order", "show", ..])
                {
                    var shown = (await current.RunAsync(TimeSpan.FromSeconds(60), [.. args, "--json"])).Stdout;
                    Assert.Contains("\"state\": \"completed\"", shown, StringComparison.Ordinal);
                    Assert.Contains("JJD000390007", shown, StringComparison.Ordinal);
                }
            }

            Assert.True(ran >= 10, $"only {ran} commands of the quick start ran: is the block still there?");
            var seller = users.Values.First();
            var reputation = (await seller.RunAsync("reputation", (await seller.RunAsync("id")).Stdout.Trim(), "--json")).Stdout;
            Assert.Contains("as described, well packed", reputation, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var daemon in daemons)
            {
                await daemon.DisposeAsync();
            }
        }
    }

    private static List<string> QuickStartBlock(string readme)
    {
        var start = readme.IndexOf("### Quick start", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README has no quick start section");
        var open = readme.IndexOf("```sh", start, StringComparison.Ordinal);
        var close = readme.IndexOf("```", open + 5, StringComparison.Ordinal);
        return [.. readme[(open + 5)..close].Split('\n')];
    }

    /// <summary>The command without its trailing comment.</summary>
    private static string Code(string line)
    {
        var comment = line.IndexOf("  #", StringComparison.Ordinal);
        return (comment < 0 ? line : line[..comment]).Trim();
    }

    /// <summary>Splits a command line as a shell would for these lines: spaces, double quotes.</summary>
    private static string[] Split(string command) =>
        [.. Words().Matches(command).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value)];

    [GeneratedRegex("\"([^\"]*)\"|(\\S+)")]
    private static partial Regex Words();

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Hybrid.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("the repository root (Hybrid.sln) is not above the test's directory");
    }

    private static void WritePhoto(string path)
    {
        using var bitmap = new SKBitmap(800, 600);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.BurlyWood);
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 85);
        File.WriteAllBytes(path, data.ToArray());
    }
}
