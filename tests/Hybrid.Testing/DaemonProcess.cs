using System.Diagnostics;
using System.Text.Json;

namespace Hybrid.Testing;

/// <summary>A real <c>hybrid peer run</c> daemon process, its output drained and kept for failure messages.</summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private static readonly TimeSpan SessionTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly ProcessOutput _output;

    private DaemonProcess(CliRunner user, Process process)
    {
        User = user;
        _process = process;
        _output = new ProcessOutput(process);
    }

    /// <summary>The user (home directory) this daemon runs for.</summary>
    public CliRunner User { get; }

    /// <summary>The process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>What it printed so far.</summary>
    public string Output => _output.ToString();

    /// <summary>Starts <c>hybrid peer run ARGS</c> and waits until its status shows a supernode session.</summary>
    public static async Task<DaemonProcess> StartAsync(CliRunner user, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(user);
        var daemon = new DaemonProcess(user, user.Launch(["peer", "run", .. args]));
        try
        {
            await daemon.WaitInSessionAsync();
            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until <c>hybrid status</c> answers with a supernode in use; returns that status.</summary>
    public async Task<JsonElement> WaitInSessionAsync()
    {
        try
        {
            var result = await Eventually.ReturnsAsync(
                () => User.RunAsync("status", "--json"),
                r => !_process.HasExited && r.ExitCode == 0 && JsonDocument.Parse(r.Stdout).RootElement.GetProperty("supernode").GetString() is { Length: > 0 },
                SessionTimeout,
                $"the daemon of {User.Home} to hold a supernode session");
            return JsonDocument.Parse(result.Stdout).RootElement.Clone();
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}{Environment.NewLine}its output:{Environment.NewLine}{Output}", ex);
        }
    }

    /// <summary>kill -9: the daemon gets no chance to clean up (its control socket file stays behind).</summary>
    public void KillHard()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        KillHard();
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
