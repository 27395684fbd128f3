using System.Diagnostics;
using System.Text.RegularExpressions;
using Hybrid.Testing;

namespace Hybrid.Desktop.Tests;

/// <summary>A real <c>hybrid desktop</c> process (with its own daemon), and the link it printed.</summary>
public sealed partial class DesktopProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<string> _link = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _lines = [];

    private DesktopProcess(CliRunner user, Process process)
    {
        User = user;
        _process = process;
        process.OutputDataReceived += (_, e) => Read(e.Data);
        process.ErrorDataReceived += (_, e) => Read(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>Whose app this is.</summary>
    public CliRunner User { get; }

    /// <summary>The link with the access token.</summary>
    public string Link { get; private set; } = string.Empty;

    /// <summary>The app's base address (no token).</summary>
    public string BaseUrl => new Uri(Link).GetLeftPart(UriPartial.Authority);

    /// <summary>Starts the app for <paramref name="user"/> and waits for its link.</summary>
    public static async Task<DesktopProcess> StartAsync(CliRunner user, string supernode)
    {
        ArgumentNullException.ThrowIfNull(user);
        var desktop = new DesktopProcess(user, user.Launch("desktop", "--supernode", supernode, "--listen", "127.0.0.1:0", "--no-browser"));
        try
        {
            desktop.Link = await desktop._link.Task.WaitAsync(TimeSpan.FromSeconds(60));
            return desktop;
        }
        catch (TimeoutException)
        {
            await desktop.DisposeAsync();
            throw new TimeoutException($"hybrid desktop printed no link within 60 s; it said:{Environment.NewLine}{string.Join(Environment.NewLine, desktop._lines)}");
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Read(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lines)
        {
            _lines.Add(line);
        }

        if (LinkLine().Match(line) is { Success: true } match)
        {
            _link.TrySetResult(match.Groups[1].Value);
        }
    }

    [GeneratedRegex(@"open: (http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+)")]
    private static partial Regex LinkLine();
}
