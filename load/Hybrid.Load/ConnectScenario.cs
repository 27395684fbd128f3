using System.Diagnostics;
using System.Globalization;
using Grpc.Net.Client;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Connection throughput on one embedded supernode, or (<c>--supernodes</c>) a cluster of them on
/// Redis with each peer's seed list starting at a different one: peers open authenticated sessions
/// (connect, challenge, signed proof, profile stored, presence set) with bounded concurrency, then
/// hold them while heartbeating. Each peer dials its own HTTP/2 connection, as thin clients do, or
/// (with <c>--peers-per-connection</c>) many peers share one, which shows a session's cost without
/// its connection's. Baselines, same run: a no-op gRPC call, and P-256 verifications on every core.
/// CPU and memory are the sums over the supernodes.
/// </summary>
internal static class ConnectScenario
{
    /// <summary>Sessions of other peers opened and closed in each warm-up round.</summary>
    private const int WarmUpRound = 1500;

    /// <summary>Warm-up rounds at most; fewer once the supernode's JIT has settled.</summary>
    private const int MaxWarmUpRounds = 8;

    /// <summary>A round in which the supernodes spent at most this share of their CPU in the JIT ends the warm-up.</summary>
    private const double SettledJitShare = 0.02;

    public static async Task<int> RunAsync(int peers, int concurrency, int peersPerConnection, int supernodes, TimeSpan hold, string? target, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("connect", "no-op gRPC call");
        var verifyRate = VerifyRate(report);
        report.Fact("ECDSA P-256 verify, both cores, in-process (baseline)", $"{verifyRate:N0} /s");

        using var temp = new TempDir();
        // Against a running network (--target) memory cannot be read; otherwise the runner starts its own supernodes.
        string[] unlimited = ["--Supernode:RequestsPerSecond=1000000", "--Supernode:RequestBurst=1000000", "--Supernode:SessionsPerMinute=1000000"];
        await using var embedded = target is null && supernodes == 1 ? await SupernodeProcess.StartAsync(temp.Sub("data"), unlimited) : null;
        await using var cluster = target is null && supernodes > 1 ? await TestCluster.StartAsync(supernodes, unlimited) : null;
        List<SupernodeProcess> nodes = embedded is not null ? [embedded] : cluster?.Nodes ?? [];
        var node = nodes.FirstOrDefault();
        IReadOnlyList<string> urls = target is not null ? [target] : [.. nodes.Select(n => n.GrpcUrl)];
        var url = urls[0];
        var ready = Stopwatch.StartNew();
        if (cluster is not null)
        {
            report.Fact("supernodes", $"{supernodes}, one Redis, each peer's seed list starting at a different one");
        }

        using (var channel = GrpcChannel.ForAddress(url))
        {
            var client = new Protocol.Api.SupernodeClients(channel);
            var request = new ListCategoriesRequest();
            await Drivers.ClosedAsync(concurrency, TimeSpan.FromSeconds(2), report.Series("warm-up (ignored)"), async _ => await client.Listings.ListCategoriesAsync(request, cancellationToken: cancellationToken));
            var noopRate = await Drivers.ClosedAsync(concurrency, TimeSpan.FromSeconds(10), report.Series("no-op gRPC call"), async _ => await client.Listings.ListCategoriesAsync(request, cancellationToken: cancellationToken));
            report.Fact("no-op gRPC calls (baseline)", $"{noopRate:N0} /s with {concurrency} in flight");
        }

        var idle = await SettledMemoryAsync(nodes);
        var idleCpu = CpuTime(nodes);
        await Task.Delay(IdleSample, cancellationToken);
        idleCpu = CpuTime(nodes) - idleCpu;
        if (node is not null)
        {
            report.Fact("supernodes' CPU while idle (baseline)", $"{idleCpu.TotalSeconds / IdleSample.TotalSeconds:P1} of one core");
        }

        await WarmUpAsync(report, nodes, peersPerConnection, urls, concurrency, cancellationToken);
        var bareRate = double.NaN;
        if (node is not null)
        {
            // After the warm-up, which opened connections too: their setup is compiled and tiered.
            var connections = Math.Min(peers, IdleConnections);
            var socketsIdle = OpenSockets(nodes);
            var idleConnections = await IdleConnectionsAsync(node, connections, concurrency, cancellationToken);
            await ConnectionsClosedAsync(nodes, socketsIdle, "the baseline's");
            bareRate = idleConnections.Rate;
            report.Fact("new HTTP/2 connections, one no-op call each (baseline)", $"{idleConnections.Rate:N0} /s ({concurrency} opening at a time); CPU for each: supernode {idleConnections.SupernodeCpu.TotalMilliseconds:0.00} ms, load runner {idleConnections.RunnerCpu.TotalMilliseconds:0.00} ms");
            report.Fact("supernode memory per idle HTTP/2 connection (baseline)", $"{idleConnections.Bytes / 1024:0.0} KiB of live managed heap ({connections:N0} connections, each after one no-op call)");
        }

        var socketsBefore = OpenSockets(nodes);
        await using var fleet = new Fleet(peers, peersPerConnection, urls);
        var runnerCpu = Process.GetCurrentProcess().TotalProcessorTime;
        var supernodeCpu = CpuTime(nodes);
        var openingJit = await JitSecondsAsync(nodes);
        var openingGc = await GcAsync(nodes);
        var opening = report.Series("open a session (connect, challenge, proof, welcome)");
        var half = peers / 2;
        var clock = Stopwatch.StartNew();
        await fleet.OpenAsync(concurrency, opening, 0, half, cancellationToken);
        // Memory with half the sessions held: the second half's growth is the cost of a session, free
        // of what the process holds anyway and of what the warm-up left behind.
        // (Outside the timed window: the collection is the measurement's cost, not the sessions'.)
        clock.Stop();
        var sampling = CpuTime(nodes);
        var samplingGc = await GcAsync(nodes);
        var halfway = await SettledMemoryAsync(nodes);
        supernodeCpu += CpuTime(nodes) - sampling;
        openingGc += await GcAsync(nodes) - samplingGc;
        clock.Start();
        await fleet.OpenAsync(concurrency, opening, half, peers, cancellationToken);
        var elapsed = clock.Elapsed;
        var openRate = peers / elapsed.TotalSeconds;
        runnerCpu = Process.GetCurrentProcess().TotalProcessorTime - runnerCpu;
        report.Fact("sessions opened", $"{openRate:N0} /s ({peers:N0} peers, {concurrency} opening at a time, {(peersPerConnection == 1 ? "one connection each" : $"{peersPerConnection} per connection")})");
        report.Fact("sessions/s ÷ (P-256 verifications/s on both cores ÷ 2)", $"{openRate / (verifyRate / 2):0.00}");
        if (peersPerConnection == 1 && !double.IsNaN(bareRate))
        {
            report.Fact("sessions/s ÷ new connections with one no-op call/s (the transport's ceiling here)", $"{openRate / bareRate:0.00}");
        }
        report.Fact("load runner's CPU while opening", $"{runnerCpu.TotalSeconds / elapsed.TotalSeconds / Environment.ProcessorCount:P0} of the machine");
        if (node is not null)
        {
            supernodeCpu = CpuTime(nodes) - supernodeCpu;
            report.Fact("supernode CPU for each session opened", $"{supernodeCpu.TotalMilliseconds / peers:0.00} ms ({supernodeCpu.TotalSeconds / elapsed.TotalSeconds / Environment.ProcessorCount:P0} of the machine)");
            report.Fact("supernodes' JIT while opening", $"{(await JitSecondsAsync(nodes) - openingJit) / supernodeCpu.TotalSeconds:P1} of their CPU");
            var gc = await GcAsync(nodes) - openingGc;
            report.Fact("supernode allocations for each session opened", $"{gc.AllocatedBytes / peers / 1024:0.0} KiB; {gc.Collections} collections ({gc.Gen1} of generation 1, {gc.Gen2} of 2) pausing it {gc.Paused / elapsed:P1} of the time");
        }

        // Hold every session and check the supernodes count them all.
        if (node is not null)
        {
            await Eventually.TrueAsync(
                async () => await ActiveSessionsAsync(nodes) == peers,
                TimeSpan.FromSeconds(30),
                $"the supernodes to report {peers} active sessions");
            if (nodes.Count > 1)
            {
                report.Fact("sessions held by each supernode", string.Join(" / ", await Task.WhenAll(nodes.Select(n => n.MetricAsync("hybrid_sessions_active")))));
            }
        }

        if (cluster is not null && ready.Elapsed < SettleTime)
        {
            // Sessions renew on every heartbeat for a minute after a silo joins (the directory settles):
            // the hold is measured as a cluster that has run for a while holds.
            await Task.Delay(SettleTime - ready.Elapsed, cancellationToken);
        }

        var heldCpu = CpuTime(nodes);
        await Task.Delay(hold, cancellationToken);
        var stillIn = fleet.InSession;
        report.Fact($"sessions still open after holding {hold.TotalSeconds:0} s", $"{stillIn:N0} of {peers:N0}");
        if (node is not null)
        {
            heldCpu = CpuTime(nodes) - heldCpu;
            var pausedBefore = await GcAsync(nodes);
            var collecting = Stopwatch.StartNew();
            var held = await SettledMemoryAsync(nodes);
            // What one full, blocking collection of a supernode holding them all costs it: while it
            // runs, nothing is answered (pings neither, and clients drop connections whose pings time out).
            var collectionPause = (await GcAsync(nodes) - pausedBefore).Paused;
            report.Fact(
                "one full blocking collection with every session held (the measurement's own)",
                string.Create(CultureInfo.InvariantCulture, $"paused the supernodes {collectionPause.TotalSeconds:0.0} s ({collecting.Elapsed.TotalSeconds:0.0} s until its end was seen)"));
            // Idle is measured before the warm-up: what the warm-up's closed sessions left behind counts
            // against the held ones, so this is an upper bound.
            // Resident memory hardly falls after a collection (the heap keeps what it committed), so the
            // per-session figure is the live managed heap's growth from half to all sessions held;
            // resident memory is shown beside it, as an upper bound that includes the warm-up's leftovers.
            // Live bytes only: after a burst with few collections (a large generation 0), the full
            // collection may sweep rather than compact, and the burst's garbage stays as free space
            // between live objects (shown beside: the next compacting collection returns it).
            report.Fact("supernode memory per held session", $"live managed heap {halfway.Heap.Live >> 20} MiB with {half:N0} held, {held.Heap.Live >> 20} MiB with {peers:N0} ({(held.Heap.Live - halfway.Heap.Live) / (double)(peers - half) / 1024:0.0} KiB per session); free space between live objects {halfway.Heap.Fragmentation >> 20} MiB / {held.Heap.Fragmentation >> 20} MiB");
            report.Fact("supernode resident memory, idle / holding", $"{idle.Resident >> 20} MiB / {held.Resident >> 20} MiB ({(held.Resident - idle.Resident) / (double)peers / 1024:0.0} KiB a session at most)");
            report.Fact("supernode CPU while holding", $"{heldCpu.TotalSeconds / hold.TotalSeconds:P1} of one core ({heldCpu.TotalMilliseconds * 1000 / hold.TotalSeconds / peers:0.0} µs a second for each session)");
        }

        // The same peers leave and come back at once, as every peer of a supernode that restarts
        // does: known identities with unchanged profiles, which a supernode admits without a write.
        var identities = fleet.Identities;
        await fleet.CloseAsync();
        if (node is not null)
        {
            await Eventually.TrueAsync(
                async () => await ActiveSessionsAsync(nodes) == 0,
                TimeSpan.FromSeconds(60),
                "the supernodes to see every session of the first round end");
            await ConnectionsClosedAsync(nodes, socketsBefore, "the first round's");
        }

        await using (var returning = new Fleet(identities, peersPerConnection, urls))
        {
            var returningCpu = CpuTime(nodes);
            var again = Stopwatch.StartNew();
            await returning.OpenAsync(concurrency, report.Series("reopen a returning peer's session"), cancellationToken);
            var returnRate = peers / again.Elapsed.TotalSeconds;
            report.Fact("returning peers' sessions opened", $"{returnRate:N0} /s ({peers:N0} peers back at once, {concurrency} opening at a time)");
            if (node is not null)
            {
                returningCpu = CpuTime(nodes) - returningCpu;
                report.Fact("supernode CPU for each returning session", $"{returningCpu.TotalMilliseconds / peers:0.00} ms");
            }
        }

        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["peers"] = peers.ToString(CultureInfo.InvariantCulture),
            ["concurrency"] = concurrency.ToString(CultureInfo.InvariantCulture),
            ["peers_per_connection"] = peersPerConnection.ToString(CultureInfo.InvariantCulture),
            ["supernodes"] = supernodes.ToString(CultureInfo.InvariantCulture),
            ["hold_seconds"] = hold.TotalSeconds.ToString(CultureInfo.InvariantCulture),
        });
        return stillIn == peers ? 0 : 1;
    }

    /// <summary>
    /// Sessions of other peers, opened and closed in rounds, so that what is measured is a supernode
    /// whose session path is compiled and tiered (a supernode serves for days). The runtime tiers code
    /// up in the background for a while after it first runs: rounds go on until one in which the
    /// supernodes spent at most <see cref="SettledJitShare"/> of their CPU in the JIT. Each round ends
    /// when the supernodes have seen its sessions end, so their closing is not counted against the
    /// measured sessions.
    /// </summary>
    private static async Task WarmUpAsync(Report report, List<SupernodeProcess> nodes, int peersPerConnection, IReadOnlyList<string> urls, int concurrency, CancellationToken cancellationToken)
    {
        var series = report.Series("warm-up sessions (ignored)");
        var jitShare = double.NaN;
        var rounds = 0;
        while (rounds < MaxWarmUpRounds && !(jitShare <= SettledJitShare))
        {
            rounds++;
            var sockets = OpenSockets(nodes);
            var cpu = CpuTime(nodes);
            var jit = await JitSecondsAsync(nodes);
            await using (var warm = new Fleet(WarmUpRound, peersPerConnection, urls))
            {
                await warm.OpenAsync(concurrency, series, cancellationToken);
            }

            if (nodes.Count == 0)
            {
                // Against a --target nothing can be read: one round of 1,500 sessions, and its closing not awaited.
                report.Fact("warm-up", $"{WarmUpRound:N0} sessions opened and closed (the supernode's JIT cannot be read)");
                return;
            }

            await Eventually.TrueAsync(async () => await ActiveSessionsAsync(nodes) == 0, TimeSpan.FromSeconds(60), "the supernodes to see every warm-up session end");
            await ConnectionsClosedAsync(nodes, sockets, "the warm-up's");
            jitShare = (await JitSecondsAsync(nodes) - jit) / (CpuTime(nodes) - cpu).TotalSeconds;
        }

        report.Fact("warm-up", $"{rounds} rounds of {WarmUpRound:N0} sessions opened and closed; the supernodes' JIT took {jitShare:P1} of their CPU in the last (settled below {SettledJitShare:P0}{(jitShare <= SettledJitShare ? string.Empty : ": not reached")})");
    }

    /// <summary>Sockets the supernodes hold, summed.</summary>
    private static int OpenSockets(IReadOnlyList<SupernodeProcess> nodes) => nodes.Sum(n => n.OpenSockets());

    /// <summary>
    /// Waits until the supernodes hold no more sockets than before a round of sessions (a few more
    /// allowed: the runner's own metric reads): a session ends before its connection is torn down,
    /// and the teardown must not be counted against the next sessions measured.
    /// </summary>
    private static Task ConnectionsClosedAsync(IReadOnlyList<SupernodeProcess> nodes, int before, string round) =>
        Eventually.TrueAsync(() => Task.FromResult(OpenSockets(nodes) <= before + 8), TimeSpan.FromSeconds(60), $"the supernodes to close {round} connections");

    /// <summary>The supernodes' garbage collection totals, summed.</summary>
    private static async Task<GcTotals> GcAsync(IReadOnlyList<SupernodeProcess> nodes) =>
        (await Task.WhenAll(nodes.Select(n => n.GcTotalsAsync()))).Aggregate(default(GcTotals), (a, b) => a + b);

    /// <summary>Seconds the supernodes' JIT has spent compiling since each started.</summary>
    private static async Task<double> JitSecondsAsync(IReadOnlyList<SupernodeProcess> nodes) =>
        (await Task.WhenAll(nodes.Select(n => n.MetricAsync("system_runtime_dotnet_jit_compilation_time")))).Sum();

    /// <summary>The supernode's live managed heap and its resident memory, right after a full garbage collection.</summary>
    private static async Task<(ManagedHeap Heap, long Resident)> SettledMemoryAsync(SupernodeProcess node)
    {
        // Blocking: at 100,000 sessions (a heap of gigabytes) it took longer than 30 s here.
        await node.CollectGarbageAsync(TimeSpan.FromMinutes(5));
        return (await node.ManagedHeapAsync(), node.ResidentBytes());
    }

    /// <summary>The supernodes' live managed heaps and resident memory, summed (zeros against a --target).</summary>
    private static async Task<(ManagedHeap Heap, long Resident)> SettledMemoryAsync(IReadOnlyList<SupernodeProcess> nodes)
    {
        var each = await Task.WhenAll(nodes.Select(SettledMemoryAsync));
        return (each.Aggregate(default(ManagedHeap), (sum, m) => sum + m.Heap), each.Sum(m => m.Resident));
    }

    private static TimeSpan CpuTime(IReadOnlyList<SupernodeProcess> nodes) =>
        nodes.Aggregate(TimeSpan.Zero, (sum, n) => sum + n.CpuTime());

    private static async Task<double> ActiveSessionsAsync(IReadOnlyList<SupernodeProcess> nodes) =>
        (await Task.WhenAll(nodes.Select(n => n.MetricAsync("hybrid_sessions_active")))).Sum();

    /// <summary>
    /// What the supernode keeps for an HTTP/2 connection that carries nothing (the server's own
    /// buffers and tables, before any session): connections opened with one no-op call each and held,
    /// measured as the live heap's growth. A session on its own connection costs this plus its own.
    /// </summary>
    /// <remarks>
    /// Timed too: connections opened a second, each with its one call, and what each cost both
    /// processes. A session on its own connection costs this and its own work, so the rate is the
    /// ceiling of the session rate on this machine.
    /// </remarks>
    private static async Task<(double Bytes, double Rate, TimeSpan SupernodeCpu, TimeSpan RunnerCpu)> IdleConnectionsAsync(SupernodeProcess node, int connections, int concurrency, CancellationToken cancellationToken)
    {
        var before = await SettledMemoryAsync(node);
        var channels = new List<GrpcChannel>(connections);
        try
        {
            var opened = Enumerable.Range(0, connections).Select(_ => GrpcChannel.ForAddress(node.GrpcUrl, new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler { PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan },
                DisposeHttpClient = true,
            })).ToList();
            channels.AddRange(opened);
            var supernodeCpu = node.CpuTime();
            var runnerCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(opened, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken }, async (channel, ct) =>
                await new Protocol.Api.SupernodeClients(channel).Listings.ListCategoriesAsync(new ListCategoriesRequest(), cancellationToken: ct));
            var rate = connections / clock.Elapsed.TotalSeconds;
            supernodeCpu = node.CpuTime() - supernodeCpu;
            runnerCpu = Process.GetCurrentProcess().TotalProcessorTime - runnerCpu;
            var holding = await SettledMemoryAsync(node);
            return ((holding.Heap.Live - before.Heap.Live) / (double)connections, rate, supernodeCpu / connections, runnerCpu / connections);
        }
        finally
        {
            channels.ForEach(c => c.Dispose());
        }
    }

    /// <summary>How long the idle supernodes' CPU is sampled.</summary>
    private static readonly TimeSpan IdleSample = TimeSpan.FromSeconds(5);

    /// <summary>A little more than a cluster's settling after a silo joins (Supernode.Sessions.PresenceRenewal.SettleTime).</summary>
    private static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(65);

    /// <summary>Idle connections opened for the per-connection baseline (fewer when fewer peers are measured).</summary>
    private const int IdleConnections = 2000;

    /// <summary>P-256 verifications of session proofs per second on every core of this machine.</summary>
    /// <remarks>
    /// Signed by many peers, as sessions are: verifications with one key take turns on that key
    /// (one key object is not documented as safe for concurrent use), so proofs of a single signer
    /// measured one core, not all of them.
    /// </remarks>
    private static double VerifyRate(Report report)
    {
        var signers = Enumerable.Range(0, 64).Select(_ => PeerIdentity.Generate()).ToList();
        var now = DateTimeOffset.UtcNow;
        var proofs = Enumerable.Range(0, 8000).Select(i => SignedEnvelopes.Sign(signers[i % signers.Count], EnvelopeKinds.SessionProof, (ulong)i + 1, new SessionProof { SupernodeId = "load" }, now, now.AddMinutes(5))).ToList();
        // Each signer's key imported once first, as a supernode has imported a returning peer's key.
        foreach (var proof in proofs.Take(signers.Count))
        {
            SignedEnvelopes.Verify(proof, EnvelopeKinds.SessionProof, now);
        }

        var series = report.Series("verify one session proof in-process");
        var clock = Stopwatch.StartNew();
        Parallel.ForEach(proofs, proof =>
        {
            var started = Stopwatch.GetTimestamp();
            SignedEnvelopes.Verify(proof, EnvelopeKinds.SessionProof, now);
            Report.Record(series, Stopwatch.GetElapsedTime(started));
        });
        var rate = proofs.Count / clock.Elapsed.TotalSeconds;
        signers.ForEach(s => s.Dispose());
        return rate;
    }

    /// <summary>Peers with their connections to the supernode, on their own HTTP/2 connections or sharing some.</summary>
    private sealed class Fleet : IAsyncDisposable
    {
        private readonly List<PeerIdentity> _identities;
        private readonly List<SocketsHttpHandler> _handlers = [];
        private readonly List<SupernodeConnection> _connections;

        public Fleet(int peers, int peersPerConnection, IReadOnlyList<string> urls)
            : this([.. Enumerable.Range(0, peers).Select(_ => PeerIdentity.Generate())], peersPerConnection, urls)
        {
        }

        /// <summary>A fleet of the given peers, which it disposes with itself; peer i's seed list starts at supernode i (modulo their number).</summary>
        public Fleet(List<PeerIdentity> identities, int peersPerConnection, IReadOnlyList<string> urls)
        {
            _identities = identities;
            var peers = identities.Count;
            if (peersPerConnection > 1)
            {
                for (var i = 0; i < (peers + peersPerConnection - 1) / peersPerConnection; i++)
                {
                    _handlers.Add(new SocketsHttpHandler
                    {
                        // A supernode takes 100 streams per connection by default: more peers open another connection.
                        EnableMultipleHttp2Connections = true,
                        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                        KeepAlivePingDelay = TimeSpan.FromSeconds(5),
                        KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                    });
                }
            }

            // Peers sharing a connection share its supernode: the seed list rotates per connection.
            _connections = [.. _identities.Select((id, i) => new SupernodeConnection(id, new SupernodeConnectionOptions
            {
                Seeds = [.. urls.Skip(i / peersPerConnection % urls.Count), .. urls.Take(i / peersPerConnection % urls.Count)],
                DisplayName = "load peer",
                SharedHandler = _handlers.Count == 0 ? null : _handlers[i / peersPerConnection],
            }))];
        }

        public int InSession => _connections.Count(c => c.InSession);

        /// <summary>The fleet's peers, handed over to whoever disposes them next (another fleet): this one no longer does.</summary>
        public List<PeerIdentity> Identities
        {
            get
            {
                _handsOverIdentities = true;
                return _identities;
            }
        }

        private bool _handsOverIdentities;

        /// <summary>Ends every session and closes the connections.</summary>
        public async Task CloseAsync()
        {
            foreach (var connection in _connections)
            {
                await connection.DisposeAsync();
            }

            _handlers.ForEach(h => h.Dispose());
        }

        public Task OpenAsync(int concurrency, HdrHistogram.LongHistogram opened, CancellationToken cancellationToken) =>
            OpenAsync(concurrency, opened, 0, _connections.Count, cancellationToken);

        /// <summary>Opens the sessions of peers <paramref name="from"/> (inclusive) to <paramref name="to"/> (exclusive).</summary>
        public async Task OpenAsync(int concurrency, HdrHistogram.LongHistogram opened, int from, int to, CancellationToken cancellationToken)
        {
            await Parallel.ForEachAsync(_connections.Skip(from).Take(to - from), new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken }, async (connection, ct) =>
            {
                var started = Stopwatch.GetTimestamp();
                connection.Start();
                await connection.WaitForSessionAsync(ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
                Report.Record(opened, Stopwatch.GetElapsedTime(started));
            });
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var connection in _connections)
            {
                await connection.DisposeAsync();
            }

            _handlers.ForEach(h => h.Dispose());
            if (!_handsOverIdentities)
            {
                _identities.ForEach(i => i.Dispose());
            }
        }
    }
}
