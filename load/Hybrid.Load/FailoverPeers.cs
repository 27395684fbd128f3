using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;

namespace Hybrid.Load;

/// <summary>
/// The failover scenario's peers, held by runner processes of their own: a process holds a socket
/// per peer, and one process may hold at most 20,000 open files here, so 10,000 peers that all
/// reconnect at once need two. Each process opens its peers' sessions on the seed, says when they
/// are all in session, and reports when each is back in session after the seed dies, as wall-clock
/// times the scenario compares with the moment it killed the seed (same machine, same clock).
/// </summary>
internal sealed class FailoverPeers : IAsyncDisposable
{
    /// <summary>How a runner process's line about itself begins among the answers of <see cref="StuckAsync"/> (the others name a peer each).</summary>
    public const string RunnerLine = "(runner process";

    /// <summary>Peers one runner process holds at most.</summary>
    public const int PerProcess = 5_000;

    private const int OpeningConcurrency = 64;
    private readonly List<Process> _processes;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _moved = new();
    private readonly ConcurrentQueue<string> _stuck = new();
    private readonly List<Task> _readers = [];
    private int _disposed;

    private FailoverPeers(List<Process> processes) => _processes = processes;

    /// <summary>CPU the peers' processes have used so far.</summary>
    public TimeSpan CpuTime() => _processes.Aggregate(TimeSpan.Zero, (sum, p) =>
    {
        p.Refresh();
        return p.HasExited ? sum : sum + p.TotalProcessorTime;
    });

    /// <summary>Peer ids, as their processes opened them.</summary>
    public ConcurrentQueue<string> Peers { get; } = new();

    /// <summary>Time each peer took to open its first session on the healthy seed.</summary>
    public ConcurrentQueue<TimeSpan> Opening { get; } = new();

    /// <summary>When each peer was back in session after the seed's death (wall clock), by peer id.</summary>
    public IReadOnlyDictionary<string, DateTimeOffset> Moved => _moved;

    /// <summary>Starts <paramref name="peers"/> peers over as many processes as they need, and waits until all are in session on <paramref name="seed"/>.</summary>
    public static async Task<FailoverPeers> OpenAsync(int peers, string seed, TimeSpan deadline, CancellationToken cancellationToken)
    {
        var count = (peers + PerProcess - 1) / PerProcess;
        var processes = Enumerable.Range(0, count).Select(i =>
        {
            var share = (peers / count) + (i < peers % count ? 1 : 0);
            // Thousands of peers failing over at once allocate fast (failed calls, new connections): with
            // the workstation collector a process of 5,000 was paused 30 – 40 % of the herd and its own
            // timeouts fired (pings unanswered, connects cancelled), so the herd measured the runner.
            return RunnerProcess.Start(
                ["failover-peers", "--seed", seed, "--peers", share.ToString(CultureInfo.InvariantCulture)],
                environment => environment["DOTNET_gcServer"] = "1");
        }).ToList();
        var group = new FailoverPeers(processes);
        var ready = processes.Select(_ => new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously)).ToList();
        for (var i = 0; i < processes.Count; i++)
        {
            group._readers.Add(group.ReadAsync(processes[i], ready[i]));
        }

        var answers = await Task.WhenAll(ready.Select(r => r.Task)).WaitAsync(deadline * 4, cancellationToken);
        if (answers.FirstOrDefault(a => a is not null) is { } error)
        {
            await group.DisposeAsync();
            throw new InvalidOperationException(error);
        }

        return group;
    }

    /// <summary>Peers not back in session now, each with what its connection last saw (asked of every process).</summary>
    public async Task<IReadOnlyCollection<string>> StuckAsync()
    {
        _stuck.Clear();
        foreach (var process in _processes.Where(p => !p.HasExited))
        {
            await process.StandardInput.WriteLineAsync("stuck");
        }

        // The answers come as lines: taken once none came for a moment (or after 5 s).
        var deadline = Stopwatch.StartNew();
        var seen = -1;
        while ((_stuck.IsEmpty || _stuck.Count != seen) && deadline.Elapsed < TimeSpan.FromSeconds(5) && _processes.Any(p => !p.HasExited))
        {
            seen = _stuck.Count;
            await Task.Delay(300);
        }

        return [.. _stuck];
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    await process.StandardInput.WriteLineAsync("exit");
                }

                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (Exception e) when (e is IOException or TimeoutException or InvalidOperationException)
            {
                process.Kill(entireProcessTree: true);
            }

            process.Dispose();
        }

        await Task.WhenAll(_readers).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Reads one process's lines; <paramref name="ready"/> gets null once its peers are in session, or why they are not.</summary>
    private async Task ReadAsync(Process process, TaskCompletionSource<string?> ready)
    {
        while (await process.StandardOutput.ReadLineAsync() is { } line)
        {
            var (word, rest) = line.IndexOf(' ', StringComparison.Ordinal) is var at and > 0 ? (line[..at], line[(at + 1)..]) : (line, string.Empty);
            switch (word)
            {
                case "peer":
                    Peers.Enqueue(rest);
                    break;
                case "opened":
                    Opening.Enqueue(TimeSpan.FromMilliseconds(double.Parse(rest, CultureInfo.InvariantCulture)));
                    break;
                case "ready":
                    ready.TrySetResult(null);
                    break;
                case "error":
                    ready.TrySetResult(rest);
                    break;
                case "moved":
                    var parts = rest.Split(' ');
                    _moved.TryAdd(parts[0], DateTimeOffset.FromUnixTimeMilliseconds(0).AddTicks((long)(double.Parse(parts[1], CultureInfo.InvariantCulture) * TimeSpan.TicksPerMillisecond)));
                    break;
                case "stuck":
                    _stuck.Enqueue(rest);
                    break;
                default:
                    Console.WriteLine(line);
                    break;
            }
        }

        ready.TrySetResult($"a runner process for peers exited with code {(process.WaitForExit(5000) ? process.ExitCode : -1)} before its peers were in session");
    }

    /// <summary>
    /// The peers' side, run as <c>failover-peers</c>: opens <paramref name="peers"/> sessions on
    /// <paramref name="seed"/> (64 at a time), then reports on standard output until told to exit on
    /// standard input.
    /// </summary>
    public static async Task<int> RunPeersAsync(string seed, int peers, CancellationToken cancellationToken)
    {
        var output = TextWriter.Synchronized(Console.Out);
        long exceptions = 0;
        AppDomain.CurrentDomain.FirstChanceException += (_, _) => Interlocked.Increment(ref exceptions);
        var moved = new ConcurrentDictionary<PeerId, bool>();
        var identities = Enumerable.Range(0, peers).Select(_ => PeerIdentity.Generate()).ToList();
        var connections = identities.Select(id =>
        {
            var c = new SupernodeConnection(id, new SupernodeConnectionOptions { Seeds = [seed], DisplayName = "load peer" });
            c.FailedOver += (_, _) => _ = moved.TryAdd(id.Id, true) && WriteLine(string.Create(CultureInfo.InvariantCulture, $"moved {id.Id} {(DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalMilliseconds:0.000}"));
            return c;
        }).ToList();
        try
        {
            await Parallel.ForEachAsync(connections, new ParallelOptions { MaxDegreeOfParallelism = OpeningConcurrency, CancellationToken = cancellationToken }, async (c, ct) =>
            {
                var opening = Stopwatch.StartNew();
                c.Start();
                await c.WaitForSessionAsync(ct).WaitAsync(TimeSpan.FromSeconds(60), ct);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"opened {opening.Elapsed.TotalMilliseconds:0.000}"));
            });
            var elsewhere = connections.Where(c => c.CurrentSupernode != seed).ToList();
            if (elsewhere.Count > 0)
            {
                output.WriteLine($"error {elsewhere.Count} peers opened their session on another supernode than the seed; last failure: {elsewhere[0].LastFailure}");
                return 1;
            }
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            output.WriteLine($"error {connections.Count(c => !c.InSession)} of {peers} peers not in session on the seed within 60 s; last failure: {connections.FirstOrDefault(c => !c.InSession)?.LastFailure}");
            return 1;
        }

        foreach (var c in connections)
        {
            output.WriteLine($"peer {c.PeerId}");
        }

        output.WriteLine("ready");
        while (await Console.In.ReadLineAsync(cancellationToken) is { } command && command != "exit")
        {
            if (command == "stuck")
            {
                // This process's own state first: a herd stalled in the peers' thread pool looks like one stalled in the network.
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"stuck {RunnerLine} {Environment.ProcessId}): {connections.Count(c => !moved.ContainsKey(c.PeerId))} of its peers not back; thread pool {ThreadPool.ThreadCount} threads, {ThreadPool.PendingWorkItemCount} items queued, {ThreadPool.CompletedWorkItemCount} run so far; since start: GC paused {GC.GetTotalPauseDuration().TotalSeconds:0.0} s, JIT {System.Runtime.JitInfo.GetCompilationTime().TotalSeconds:0.0} s, {Interlocked.Read(ref exceptions):N0} exceptions"));
                foreach (var c in connections.Where(c => !moved.ContainsKey(c.PeerId)))
                {
                    output.WriteLine($"stuck {c.PeerId}: in session {c.InSession} via {c.CurrentSupernode}; last failure: {c.LastFailure}");
                }
            }
        }

        foreach (var c in connections)
        {
            await c.DisposeAsync();
        }

        identities.ForEach(i => i.Dispose());
        return 0;

        bool WriteLine(string line)
        {
            output.WriteLine(line);
            return true;
        }
    }
}
