using System.Text.Json;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests.Infrastructure;

/// <summary>What the CLI-driven tests do with each command: require success, read its JSON, make a user.</summary>
internal static class Cli
{
    /// <summary>The command's result, failing the test with its exit code and error line unless it succeeded.</summary>
    public static async Task<CliResult> Ok(Task<CliResult> run)
    {
        var result = await run;
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stderr}");
        return result;
    }

    /// <summary>The command's standard output, parsed as JSON.</summary>
    public static JsonElement Json(CliResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    /// <summary>A user with a fresh home (<c>hybrid init</c>) in <paramref name="temp"/>.</summary>
    public static async Task<CliRunner> InitAsync(TempDir temp, string home, string name)
    {
        ArgumentNullException.ThrowIfNull(temp);
        var user = new CliRunner(temp.Sub(home));
        await Ok(user.RunAsync("init", "--name", name));
        return user;
    }
}
