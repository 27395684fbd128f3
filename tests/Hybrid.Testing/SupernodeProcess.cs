using System.Diagnostics;
using Grpc.Net.Client;

namespace Hybrid.Testing;

/// <summary>A real supernode process on loopback ports, started from the supernode's own build output.</summary>
public sealed class SupernodeProcess : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly Process _process;
    private readonly ProcessOutput _output;
    private GrpcChannel? _channel;

    private SupernodeProcess(Process process, string grpcUrl, string opsUrl, string dataDir)
    {
        _process = process;
        GrpcUrl = grpcUrl;
        OpsUrl = opsUrl;
        DataDir = dataDir;
        _output = new ProcessOutput(process);
    }

    /// <summary>Settings that let any number of new identities and listings in, for tests and load runs that are not about quotas.</summary>
    public static readonly IReadOnlyList<string> OpenAdmission =
    [
        "--Supernode:IdentityWorkBits=0", "--Supernode:NewIdentitiesPerAddressPerHour=1000000", "--Supernode:NewIdentitiesPerMinute=1000000",
        "--Supernode:MaxListingsPerSeller=10000000", "--Supernode:MaxListingBytesPerSeller=100000000000", "--Supernode:MaxListings=100000000", "--Supernode:MaxListingBytes=1000000000000",
    ];

    public string GrpcUrl { get; }

    public string OpsUrl { get; }

    public string DataDir { get; }

    public bool HasExited => _process.HasExited;

    public int ProcessId => _process.Id;

    /// <summary>Resident memory of the process now (Linux /proc), in bytes.</summary>
    public long ResidentBytes()
    {
        var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>Sockets the process holds open now (Linux /proc): its listeners, and a connection for each client.</summary>
    public int OpenSockets() =>
        new DirectoryInfo($"/proc/{_process.Id}/fd").EnumerateFileSystemInfos().Count(fd => fd.LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true);

    /// <summary>CPU time the process has used so far, user and system.</summary>
    public TimeSpan CpuTime()
    {
        _process.Refresh();
        return _process.TotalProcessorTime;
    }

    public string Output => _output.ToString();

    public Protocol.Api.SupernodeClients Client => new(_channel ??= GrpcChannel.ForAddress(GrpcUrl));

    /// <summary>Starts a supernode and waits until /readyz answers 200.</summary>
    public static async Task<SupernodeProcess> StartAsync(string dataDir, params string[] extraArgs)
    {
        // A port that was free a moment ago can be taken by another process before the supernode binds
        // it (tests start many processes at once): such a start is tried again on other ports, twice.
        for (var attempt = 1; ; attempt++)
        {
            var node = Launch(dataDir, extraArgs);
            try
            {
                await node.WaitReadyAsync(failWhenExited: true);
                return node;
            }
            catch (InvalidOperationException) when (attempt < 3 && node.HasExited && node.Output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await node.DisposeAsync();
            }
        }
    }

    /// <summary>Starts a supernode without waiting for it (to see it fail, or to start several at once).</summary>
    public static SupernodeProcess Launch(string dataDir, params string[] extraArgs) => Launch(null, dataDir, extraArgs);

    /// <summary>
    /// Starts a supernode on a public port chosen beforehand, without waiting for it: for supernodes
    /// that must know each other's URLs before any of them starts (federated clusters), or that
    /// come back on the same URL after a restart.
    /// </summary>
    public static SupernodeProcess Launch(int grpcPort, string dataDir, params string[] extraArgs) => Launch(null, dataDir, extraArgs, grpcPort);

    /// <summary>
    /// Starts a supernode inside a NAT lab host's network namespace, serving the public API on the
    /// host's address and the ops endpoints on a Unix socket in its data folder (reachable from outside the lab).
    /// </summary>
    public static async Task<SupernodeProcess> StartInLabAsync(LabHost host, string dataDir, params string[] extraArgs)
    {
        ArgumentNullException.ThrowIfNull(host);
        var node = Launch(host, dataDir, extraArgs);
        await node.WaitReadyAsync();
        return node;
    }

    private static SupernodeProcess Launch(LabHost? host, string dataDir, string[] extraArgs, int? chosenGrpcPort = null)
    {
        var grpcPort = chosenGrpcPort ?? Ports.Free();
        var opsPort = Ports.Free();
        var start = new ProcessStartInfo(host is null ? "dotnet" : "ip")
        {
            WorkingDirectory = Path.GetDirectoryName(SupernodeBuild.DllPath)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The supernode runs with the collector it ships with (its runtimeconfig), whichever one the
        // process starting it was given: a load runner may run the server collector for its own peers.
        start.Environment.Remove("DOTNET_gcServer");
        if (host is not null)
        {
            foreach (var arg in (string[])["netns", "exec", host.Namespace, "dotnet"])
            {
                start.ArgumentList.Add(arg);
            }
        }

        Directory.CreateDirectory(dataDir);
        var grpcUrl = $"http://{host?.Address ?? "127.0.0.1"}:{grpcPort}";
        var opsUrl = host is null ? $"http://127.0.0.1:{opsPort}" : $"http://unix:{Path.Combine(dataDir, "ops.sock")}";
        start.ArgumentList.Add(SupernodeBuild.DllPath);
        start.ArgumentList.Add($"--Kestrel:Endpoints:Grpc:Url={grpcUrl}");
        start.ArgumentList.Add($"--Kestrel:Endpoints:Ops:Url={opsUrl}");
        start.ArgumentList.Add($"--Supernode:DataDir={dataDir}");
        start.ArgumentList.Add("--Logging:LogLevel:Default=Warning");
        // Tests and load runs make thousands of fresh identities and listings from one address: no work, no quotas.
        // Tests of admission itself pass their own values, which come later and win.
        foreach (var open in OpenAdmission)
        {
            start.ArgumentList.Add(open);
        }

        foreach (var arg in extraArgs)
        {
            start.ArgumentList.Add(arg.Replace("{grpcPort}", grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        return new SupernodeProcess(process, grpcUrl, opsUrl, dataDir);
    }

    /// <summary>Waits until the supernode reports ready; with <paramref name="failWhenExited"/>, fails at once if its process has exited.</summary>
    public async Task WaitReadyAsync(TimeSpan? timeout = null, bool failWhenExited = false)
    {
        try
        {
            await Eventually.TrueAsync(
                async () => failWhenExited ? _process.HasExited || (await OpsGetAsync("/readyz")).IsSuccessStatusCode : !_process.HasExited && (await OpsGetAsync("/readyz")).IsSuccessStatusCode,
                timeout ?? ReadyTimeout,
                $"supernode {GrpcUrl} to report ready");
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}{Environment.NewLine}its output:{Environment.NewLine}{Output}", ex);
        }

        if (failWhenExited && _process.HasExited)
        {
            throw new InvalidOperationException($"supernode {GrpcUrl} exited with code {_process.ExitCode} before it was ready; its output:{Environment.NewLine}{Output}");
        }
    }

    /// <summary>The value of one metric series as the ops endpoint shows it now (e.g. <c>hybrid_relay_links_total{outcome="spliced"}</c>); 0 while the series has no sample.</summary>
    public async Task<double> MetricAsync(string series) =>
        (await SamplesAsync(s => s == series)).Select(s => s.Value).FirstOrDefault();

    /// <summary>Every series of metric <paramref name="name"/> (its labels as written, "" for none) and its value now, read at once.</summary>
    public async Task<Dictionary<string, double>> SeriesAsync(string name) =>
        (await SamplesAsync(s => s == name || s.StartsWith(name + "{", StringComparison.Ordinal)))
            .ToDictionary(s => s.Series[name.Length..], s => s.Value, StringComparer.Ordinal);

    /// <summary>The samples on the ops endpoint whose series (name and labels) <paramref name="matches"/>, read at once.</summary>
    private async Task<List<(string Series, double Value)>> SamplesAsync(Func<string, bool> matches)
    {
        using var response = await OpsGetAsync("/metrics");
        return [.. (await response.Content.ReadAsStringAsync()).Split('\n')
            .Where(l => !l.StartsWith('#') && l.LastIndexOf(' ') > 0 && matches(l[..l.LastIndexOf(' ')]))
            .Select(l => (l[..l.LastIndexOf(' ')], double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)))];
    }

    /// <summary>
    /// Has the supernode collect its whole heap, through the runtime's diagnostics port as
    /// dotnet-gcdump does, and waits until its metrics count one more full collection: resident
    /// memory sampled afterwards shows what is live, not what the next collection would free.
    /// The collection blocks the supernode; with a heap of gigabytes it takes many seconds, so a
    /// caller holding that much gives it longer than the default 30 s (<paramref name="wait"/>).
    /// </summary>
    public async Task CollectGarbageAsync(TimeSpan? wait = null)
    {
        const string FullCollections = "dotnet_collection_count_total{generation=\"2\"}";
        const long GcKeyword = 0x1;
        const long GcHeapCollectKeyword = 0x800000;
        var before = await MetricAsync(FullCollections);
        var client = new Microsoft.Diagnostics.NETCore.Client.DiagnosticsClient(_process.Id);
        using var session = client.StartEventPipeSession(
            [new Microsoft.Diagnostics.NETCore.Client.EventPipeProvider("Microsoft-Windows-DotNETRuntime", System.Diagnostics.Tracing.EventLevel.Informational, GcKeyword | GcHeapCollectKeyword)],
            requestRundown: false);
        // The runtime writes the session's events until it is stopped: read them so it never waits on us.
        var drain = session.EventStream.CopyToAsync(Stream.Null);
        try
        {
            await Eventually.TrueAsync(async () => await MetricAsync(FullCollections) > before, wait ?? TimeSpan.FromSeconds(30), "the supernode to finish a full garbage collection");
        }
        finally
        {
            await session.StopAsync(CancellationToken.None);
            await drain.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>
    /// The managed heap as the supernode's last garbage collection left it (every generation): what
    /// is live, and the free space between live objects that the collection did not compact away.
    /// A collection that sweeps instead of compacting (as one after a large generation 0 may) leaves
    /// the garbage of a burst in place as free space: counted as heap, it is not held by anything.
    /// </summary>
    public async Task<ManagedHeap> ManagedHeapAsync()
    {
        const string Size = "system_runtime_dotnet_gc_last_collection_heap_size{";
        const string Fragmentation = "system_runtime_dotnet_gc_last_collection_heap_fragmentation_size{";
        var samples = await SamplesAsync(s => s.StartsWith(Size, StringComparison.Ordinal) || s.StartsWith(Fragmentation, StringComparison.Ordinal));
        var free = (long)samples.Where(s => s.Series.StartsWith(Fragmentation, StringComparison.Ordinal)).Sum(s => s.Value);
        return new ManagedHeap((long)samples.Where(s => s.Series.StartsWith(Size, StringComparison.Ordinal)).Sum(s => s.Value) - free, free);
    }

    /// <summary>The garbage collector's totals since the supernode started, from one read of its metrics.</summary>
    public async Task<GcTotals> GcTotalsAsync()
    {
        const string Allocated = "system_runtime_dotnet_gc_heap_total_allocated";
        const string Collections = "system_runtime_dotnet_gc_collections{gc_heap_generation=";
        const string Paused = "system_runtime_dotnet_gc_pause_time";
        var read = (await SamplesAsync(s => s is Allocated or Paused || s.StartsWith(Collections, StringComparison.Ordinal)))
            .ToDictionary(s => s.Series, s => s.Value, StringComparer.Ordinal);
        return new(
            read.GetValueOrDefault(Allocated),
            read.GetValueOrDefault(Collections + "\"gen0\"}"),
            read.GetValueOrDefault(Collections + "\"gen1\"}"),
            read.GetValueOrDefault(Collections + "\"gen2\"}"),
            TimeSpan.FromSeconds(read.GetValueOrDefault(Paused)));
    }

    /// <summary>
    /// A histogram on the ops endpoint, read at once: each bucket's upper bound in seconds with the
    /// count of observations at or under it (cumulative, as Prometheus gives them), smallest first.
    /// </summary>
    /// <param name="name">The histogram's name.</param>
    /// <param name="labels">Its other labels as the endpoint writes them (<c>stage="page"</c>), for one series of a labelled histogram.</param>
    public async Task<BucketCounts> HistogramAsync(string name, string? labels = null)
    {
        var prefix = labels is null ? name + "_bucket{le=\"" : $"{name}_bucket{{{labels},le=\"";
        var sum = labels is null ? name + "_sum" : $"{name}_sum{{{labels}}}";
        var samples = await SamplesAsync(s => s.StartsWith(prefix, StringComparison.Ordinal) || s == sum);
        var buckets = samples
            .Where(s => s.Series != sum)
            .Select(s => (Le: s.Series[prefix.Length..^2] is var le && le == "+Inf" ? double.PositiveInfinity : double.Parse(le, System.Globalization.CultureInfo.InvariantCulture), Count: s.Value))
            .OrderBy(b => b.Le)
            .ToArray();
        return new(buckets, samples.Where(s => s.Series == sum).Select(s => s.Value).FirstOrDefault());
    }

    /// <summary>GET on the ops endpoint (over its Unix socket for a supernode in the NAT lab).</summary>
    public async Task<HttpResponseMessage> OpsGetAsync(string path)
    {
        if (!OpsUrl.StartsWith("http://unix:", StringComparison.Ordinal))
        {
            return await Http.GetAsync(new Uri($"{OpsUrl}{path}"));
        }

        var socketPath = OpsUrl["http://unix:".Length..];
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath), ct);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            return await http.GetAsync(new Uri($"http://localhost{path}"));
        }
        catch (HttpRequestException)
        {
            return new HttpResponseMessage(System.Net.HttpStatusCode.ServiceUnavailable);
        }
    }

    /// <summary>kill -9: no shutdown code runs, sockets are reset by the kernel.</summary>
    public void KillHard()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM: the supernode drains its sessions and leaves the cluster.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

/// <summary>Where the supernode's build output is, for the configuration these tests were built in.</summary>
public static class SupernodeBuild
{
    public static string DllPath { get; } = BuildOutput.Locate(Path.Combine("services", "Hybrid.Supernode"), "Hybrid.Supernode.dll");
}

/// <summary>Finds a project's build output beside the running assembly's configuration (Debug or Release).</summary>
public static class BuildOutput
{
    /// <summary>The repository root: the folder holding Hybrid.sln above the running tests.</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Locate(string projectDirectory, string dllName)
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var path = Path.Combine(RepositoryRoot, projectDirectory, "bin", configuration, "net10.0", dllName);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{dllName} not built: {path} is missing");
    }

    private static string FindRoot()
    {
        var here = AppContext.BaseDirectory;
        var dir = new DirectoryInfo(here);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Hybrid.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"no Hybrid.sln above {here}");
    }
}

/// <summary>A process's garbage collection totals: bytes allocated, collections of each generation, time paused; subtract two to get a phase's.</summary>
public readonly record struct GcTotals(double AllocatedBytes, double Gen0, double Gen1, double Gen2, TimeSpan Paused)
{
    public double Collections => Gen0 + Gen1 + Gen2;

    public static GcTotals operator +(GcTotals a, GcTotals b) => new(a.AllocatedBytes + b.AllocatedBytes, a.Gen0 + b.Gen0, a.Gen1 + b.Gen1, a.Gen2 + b.Gen2, a.Paused + b.Paused);

    public static GcTotals operator -(GcTotals a, GcTotals b) => new(a.AllocatedBytes - b.AllocatedBytes, a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.Paused - b.Paused);
}

/// <summary>A supernode's managed heap after a collection: live bytes, and free space between them (fragmentation).</summary>
public readonly record struct ManagedHeap(long Live, long Fragmentation)
{
    public static ManagedHeap operator +(ManagedHeap a, ManagedHeap b) => new(a.Live + b.Live, a.Fragmentation + b.Fragmentation);
}

/// <summary>A histogram's cumulative bucket counts and the sum of its observations; subtract two reads for what happened between them.</summary>
public sealed record BucketCounts((double Le, double Count)[] Buckets, double Sum = 0)
{
    /// <summary>Observations counted.</summary>
    public double Count => Buckets.Length == 0 ? 0 : Buckets[^1].Count;

    /// <summary>The mean observation (seconds), 0 when there was none.</summary>
    public double Mean => Count > 0 ? Sum / Count : 0;

    /// <summary>The upper bound (seconds) of the bucket holding the <paramref name="quantile"/>: the quantile is at most this.</summary>
    public double AtMost(double quantile)
    {
        var total = Count;
        return Buckets.FirstOrDefault(b => b.Count >= quantile * total && total > 0).Le;
    }

    /// <summary>The share of observations above <paramref name="bound"/> (seconds; a bucket's bound).</summary>
    public double ShareOver(double bound) =>
        Count > 0 ? (Count - Buckets.Where(b => b.Le >= bound).Select(b => b.Count).DefaultIfEmpty(Count).First()) / Count : 0;

    /// <summary>Two histograms of the same buckets counted together (one series on several supernodes).</summary>
    public static BucketCounts operator +(BucketCounts a, BucketCounts b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.Buckets.Length == 0 ? b : new([.. a.Buckets.Select(x => (x.Le, x.Count + b.Buckets.FirstOrDefault(y => y.Le == x.Le).Count))], a.Sum + b.Sum);
    }

    public static BucketCounts operator -(BucketCounts a, BucketCounts b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return new([.. a.Buckets.Select(x => (x.Le, x.Count - b.Buckets.FirstOrDefault(y => y.Le == x.Le).Count))], a.Sum - b.Sum);
    }
}
