using System.Diagnostics;

namespace Hybrid.Load;

/// <summary>This load runner started again as a child process running one of its hidden commands, driven over standard input and output.</summary>
internal static class RunnerProcess
{
    /// <summary>Starts the runner with <paramref name="arguments"/>; <paramref name="environment"/> adjusts the child's environment first.</summary>
    public static Process Start(IEnumerable<string> arguments, Action<IDictionary<string, string?>> environment)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        environment(start.Environment);
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet")
        {
            start.ArgumentList.Add(typeof(RunnerProcess).Assembly.Location);
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start) ?? throw new InvalidOperationException($"could not start a runner process for '{string.Join(' ', arguments)}'");
    }
}
