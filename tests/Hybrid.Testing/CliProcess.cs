using System.Diagnostics;

namespace Hybrid.Testing;

/// <summary>Runs the real <c>hybrid</c> command line as a user would, with its own home directory.</summary>
public sealed class CliRunner(string home)
{
    public static string DllPath { get; } = BuildOutput.Locate(Path.Combine("clients", "Hybrid.Cli"), "hybrid.dll");

    public string Home { get; } = home;

    /// <summary>A NAT lab namespace to run every command in (null: this machine's own network).</summary>
    public string? Namespace { get; init; }

    /// <summary>Extra environment variables for every command.</summary>
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();

    /// <summary>Runs one command to completion (bounded by <paramref name="timeout"/>).</summary>
    public async Task<CliResult> RunAsync(TimeSpan? timeout, params string[] args)
    {
        using var process = Process.Start(Start(args)) ?? throw new InvalidOperationException("dotnet did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"hybrid {string.Join(' ', args)} did not finish in time");
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    public Task<CliResult> RunAsync(params string[] args) => RunAsync(null, args);

    /// <summary>Starts a long-running command (such as <c>peer run</c>); the caller kills it.</summary>
    public Process Launch(params string[] args) => Process.Start(Start(args)) ?? throw new InvalidOperationException("dotnet did not start");

    private ProcessStartInfo Start(string[] args)
    {
        var start = new ProcessStartInfo(Namespace is null ? "dotnet" : "ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Namespace is not null)
        {
            foreach (var arg in (string[])["netns", "exec", Namespace, "dotnet"])
            {
                start.ArgumentList.Add(arg);
            }
        }

        start.ArgumentList.Add(DllPath);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HYBRID_HOME"] = Home;
        foreach (var (name, value) in Variables)
        {
            start.Environment[name] = value;
        }
        return start;
    }
}

/// <summary>What a command printed and how it exited.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr);
