using System.Diagnostics;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Xunit.Abstractions;

namespace Hybrid.Supernode.Tests;

public sealed class ClusterTests(ITestOutputHelper output)
{
    private static readonly string[] FastSessions = ["--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:03"];
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    // What "within the configured time" means for these settings: failure detection (1 s probes, 3 missed)
    // plus one session timeout, with room for a loaded 2-core CI machine. The measured figure goes to BENCHMARKS.md.
    private static readonly TimeSpan FailoverBound = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task AClientSeededWithOneSupernodeLearnsAllAndIsFoundOnlineThroughAnother()
    {
        await using var cluster = await TestCluster.StartAsync(3, FastSessions);
        var (sn1, sn3) = (cluster.Nodes[0], cluster.Nodes[2]);
        using var peer = PeerIdentity.Generate();
        await using var connection = new SupernodeConnection(peer, new SupernodeConnectionOptions { Seeds = [sn1.GrpcUrl], DisplayName = "Pat", SupernodeListRefresh = TimeSpan.FromMilliseconds(500) });

        connection.Start();
        Assert.Equal(sn1.GrpcUrl, await connection.WaitForSessionAsync().WaitAsync(Deadline));

        // Right after start a supernode's view of the cluster may still lack the newest member; the list is refreshed while in session.
        var all = cluster.Nodes.Select(n => n.GrpcUrl).Order().ToList();
        await Eventually.TrueAsync(() => Task.FromResult(connection.KnownSupernodes.Order().SequenceEqual(all)), Deadline, "the connection to learn every supernode");
        var seenFromThree = await sn3.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = peer.Id.ToString() });
        Assert.True(seenFromThree.Online);
        Assert.Equal("Pat", seenFromThree.DisplayName);
        Assert.Equal(sn1.GrpcUrl, seenFromThree.SupernodeUrl);
        var viaConnection = await connection.LookupPeerAsync(peer.Id);
        Assert.True(viaConnection.Online);
        var listedByThree = await sn3.Client.Directory.ListSupernodesAsync(new ListSupernodesRequest());
        Assert.Equal(cluster.Nodes.Select(n => n.GrpcUrl).Order(), listedByThree.Supernodes.Select(s => s.Url).Order());
    }

    [Fact]
    public async Task KillingTheSupernodeHoldingASessionMovesItElsewhereAndThePeerStaysFindable()
    {
        await using var cluster = await TestCluster.StartAsync(3, FastSessions);
        var sn1 = cluster.Nodes[0];
        var survivors = cluster.Nodes.Skip(1).ToList();
        using var peer = PeerIdentity.Generate();
        await using var connection = new SupernodeConnection(peer, new SupernodeConnectionOptions { Seeds = [sn1.GrpcUrl], DisplayName = "Pat's Records" });
        var failedOver = new TaskCompletionSource<SupernodeConnectionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.FailedOver += (_, e) => failedOver.TrySetResult(e);
        connection.Start();
        Assert.Equal(sn1.GrpcUrl, await connection.WaitForSessionAsync().WaitAsync(Deadline));

        var clock = Stopwatch.StartNew();
        sn1.KillHard();
        var moved = await failedOver.Task.WaitAsync(Deadline);
        var backInSession = clock.Elapsed;

        Assert.Equal(sn1.GrpcUrl, moved.PreviousUrl);
        Assert.Contains(moved.SupernodeUrl, survivors.Select(s => s.GrpcUrl));
        Assert.True(backInSession < FailoverBound, $"back in session after {backInSession.TotalSeconds:0.0} s; bound {FailoverBound.TotalSeconds} s");
        // While the cluster is still evicting the dead silo, the new session may itself be cut and move once
        // more; what a user relies on is that every survivor points at the supernode holding the session now.
        var survivorUrls = survivors.Select(s => s.GrpcUrl).ToHashSet();
        foreach (var survivor in survivors)
        {
            var info = await Eventually.ReturnsAsync(
                () => survivor.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = peer.Id.ToString() }).ResponseAsync,
                i => i.Online && survivorUrls.Contains(i.SupernodeUrl) && i.SupernodeUrl == connection.CurrentSupernode,
                Deadline,
                $"{survivor.GrpcUrl} to show the peer online via the supernode holding its session ({connection.CurrentSupernode ?? "none"})");
            Assert.Equal("Pat's Records", info.DisplayName);
            Assert.Equal(peer.PublicKey, info.PublicKey.ToByteArray());
        }

        var lookupsAnswer = clock.Elapsed;
        output.WriteLine($"kill -9 -> back in session: {backInSession.TotalSeconds:0.00} s; -> lookups on all survivors answer: {lookupsAnswer.TotalSeconds:0.00} s");
        await Eventually.TrueAsync(
            async () => !(await survivors[0].Client.Directory.ListSupernodesAsync(new ListSupernodesRequest())).Supernodes.Any(s => s.Url == sn1.GrpcUrl),
            Deadline,
            "the dead supernode to leave the supernode list");
    }

    [Fact]
    public async Task PeersOfAKilledSupernodeAreFoundThroughEverySurvivorLongBeforeTheirNextHeartbeat()
    {
        // Default heartbeats (15 s): the peers' presences must not wait for them. When the dead silo is
        // declared dead its directory entries are lost, and a presence set by a session opened before
        // that can be lost with them; the survivors renew their sessions' presences at once after the
        // change, and a peer whose presence was lost is asked to reconnect.
        await using var cluster = await TestCluster.StartAsync(3);
        var sn1 = cluster.Nodes[0];
        var survivors = cluster.Nodes.Skip(1).ToList();
        var peers = Enumerable.Range(0, 30).Select(_ => PeerIdentity.Generate()).ToList();
        // The list of supernodes is refreshed every second so that each peer learns of both survivors
        // (the welcome's list may be read from the registry before the last member joined it).
        var connections = peers.Select(p => new SupernodeConnection(p, new SupernodeConnectionOptions { Seeds = [sn1.GrpcUrl], DisplayName = "crash survivor", SupernodeListRefresh = TimeSpan.FromSeconds(1) })).ToList();
        try
        {
            connections.ForEach(c => c.Start());
            await Task.WhenAll(connections.Select(c => c.WaitForSessionAsync().WaitAsync(Deadline)));
            Assert.All(connections, c => Assert.Equal(sn1.GrpcUrl, c.CurrentSupernode));
            var everyUrl = cluster.Nodes.Select(n => n.GrpcUrl).ToList();
            await Eventually.TrueAsync(
                () => Task.FromResult(connections.All(c => everyUrl.All(c.KnownSupernodes.Contains))),
                Deadline,
                "every peer to know all three supernodes before the kill");

            var clock = Stopwatch.StartNew();
            sn1.KillHard();
            var survivorUrls = survivors.Select(s => s.GrpcUrl).ToHashSet();
            foreach (var survivor in survivors)
            {
                await Task.WhenAll(peers.Select(p => Eventually.TrueAsync(
                    async () => await survivor.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = p.Id.ToString() }) is { Online: true } info && survivorUrls.Contains(info.SupernodeUrl),
                    TimeSpan.FromSeconds(12),
                    $"{survivor.GrpcUrl} to show {p.Id} online on a survivor, before its first heartbeat there (15 s)")));
            }

            output.WriteLine($"kill -9 -> all 30 peers found through both survivors: {clock.Elapsed.TotalSeconds:0.00} s");

            // They spread over the survivors rather than all trying the same one first (30 peers picking
            // one of two at random all alike: once in half a billion).
            var held = connections.GroupBy(c => c.CurrentSupernode ?? "none").ToDictionary(g => g.Key, g => g.Count());
            Assert.True(survivors.All(s => held.GetValueOrDefault(s.GrpcUrl) > 0), $"sessions per supernode after the kill: {string.Join(", ", held.Select(h => $"{h.Key} {h.Value}"))}");

            // The peers' directory grains were unreachable until the dead supernode was declared dead:
            // the survivors waited for them rather than turn the peers away (to back off and come back late).
            foreach (var survivor in survivors)
            {
                var turnedAway = (await survivor.SeriesAsync("hybrid_calls_unavailable_total"))
                    .Where(s => s.Key.Contains("DirectoryApi/Session", StringComparison.Ordinal) && s.Value > 0)
                    .Select(s => $"{s.Key} {s.Value}")
                    .ToList();
                Assert.True(turnedAway.Count == 0, $"{survivor.GrpcUrl} turned session opens away while the peers' grains moved: {string.Join(", ", turnedAway)}");
                output.WriteLine($"{survivor.GrpcUrl}: session opens that waited for a grain to move: {await survivor.MetricAsync("hybrid_session_open_waits_total")}");
            }
        }
        finally
        {
            foreach (var connection in connections)
            {
                await connection.DisposeAsync();
            }

            peers.ForEach(p => p.Dispose());
        }
    }

    [Fact]
    public async Task AGracefullyStoppingSupernodeSendsItsPeersElsewhereAtOnce()
    {
        await using var cluster = await TestCluster.StartAsync(2, FastSessions);
        var (sn1, sn2) = (cluster.Nodes[0], cluster.Nodes[1]);
        using var peer = PeerIdentity.Generate();
        await using var connection = new SupernodeConnection(peer, new SupernodeConnectionOptions { Seeds = [sn1.GrpcUrl], DisplayName = "Quinn" });
        var disconnected = new TaskCompletionSource<SupernodeConnectionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        var failedOver = new TaskCompletionSource<SupernodeConnectionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Disconnected += (_, e) => disconnected.TrySetResult(e);
        connection.FailedOver += (_, e) => failedOver.TrySetResult(e);
        connection.Start();
        await connection.WaitForSessionAsync().WaitAsync(Deadline);

        sn1.Terminate();

        Assert.Contains("shutting down", (await disconnected.Task.WaitAsync(Deadline)).Reason, StringComparison.Ordinal);
        Assert.Equal(sn2.GrpcUrl, (await failedOver.Task.WaitAsync(Deadline)).SupernodeUrl);
    }
}
