using System.Collections.Concurrent;
using System.Diagnostics;

namespace Hybrid.Testing;

/// <summary>Drains a child process's stdout and stderr (so it never blocks on a full pipe) and keeps the last lines for failure messages.</summary>
public sealed class ProcessOutput
{
    private const int Keep = 400;
    private readonly ConcurrentQueue<string> _lines = new();

    /// <summary>Starts draining <paramref name="process"/>.</summary>
    public ProcessOutput(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <inheritdoc />
    public override string ToString() => string.Join(Environment.NewLine, _lines);

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        _lines.Enqueue(line);
        while (_lines.Count > Keep && _lines.TryDequeue(out _))
        {
        }
    }
}
