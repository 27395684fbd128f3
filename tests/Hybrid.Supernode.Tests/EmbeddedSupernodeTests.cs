using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

public sealed class EmbeddedSupernodeTests
{
    private static readonly string[] FastSessions = ["--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:02"];
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private static readonly HttpClient Http = new();

    [Fact]
    public async Task AProfileSurvivesKillDashNineAndRestart()
    {
        using var temp = new TempDir();
        using var alice = PeerIdentity.Generate();
        var dataDir = temp.Sub("data");

        await using (var first = await SupernodeProcess.StartAsync(dataDir, FastSessions))
        {
            await using var connection = new SupernodeConnection(alice, new SupernodeConnectionOptions { Seeds = [first.GrpcUrl], DisplayName = "Alice's Bikes" });
            connection.Start();
            await connection.WaitForSessionAsync().WaitAsync(Deadline);
            var online = await first.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = alice.Id.ToString() });
            Assert.True(online.Online);

            first.KillHard();
        }

        await using var second = await SupernodeProcess.StartAsync(dataDir, FastSessions);
        var found = await second.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = alice.Id.ToString() });

        Assert.Equal("Alice's Bikes", found.DisplayName);
        Assert.Equal(alice.PublicKey, found.PublicKey.ToByteArray());
        Assert.False(found.Online);
        Assert.True(found.LastSeenMs > 0);
        // The stored profile is the exact signed envelope: anyone can verify it again.
        var verified = Protocol.Envelopes.SignedEnvelopes.Verify(found.Profile, Protocol.Envelopes.EnvelopeKinds.Profile, DateTimeOffset.UtcNow, alice.Id);
        Assert.Equal("Alice's Bikes", verified.Body(PeerProfile.Parser).DisplayName);
    }

    [Fact]
    public async Task APeerInSessionIsOnlineWithItsEndpointsAndCountedInMetrics()
    {
        using var temp = new TempDir();
        using var bob = PeerIdentity.Generate();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"), FastSessions);
        await using var connection = new SupernodeConnection(bob, new SupernodeConnectionOptions
        {
            Seeds = [node.GrpcUrl],
            DisplayName = "Bob",
            Endpoints = ["https://127.0.0.1:7400"],
        });

        connection.Start();
        Assert.Equal(node.GrpcUrl, await connection.WaitForSessionAsync().WaitAsync(Deadline));

        var info = await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = bob.Id.ToString() });
        Assert.True(info.Online);
        Assert.Equal(node.GrpcUrl, info.SupernodeUrl);
        // Nothing answers at the announced endpoint: it stays a candidate, never offered as reachable.
        await Eventually.TrueAsync(() => Task.FromResult(connection.Reachability is not null), Deadline, "the supernode's dial-back report");
        Assert.False(connection.Reachability!.Reachable);
        info = await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = bob.Id.ToString() });
        Assert.Empty(info.Endpoints);
        Assert.Contains("https://127.0.0.1:7400", info.Candidates.Select(c => c.Url));
        // An authenticated call through the connection carries the session token.
        var renamed = RawSession.Profile(bob, "Bob's Books", (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1000);
        await connection.CallAsync((client, call) => client.Directory.PublishProfileAsync(renamed, call).ResponseAsync);
        Assert.Equal("Bob's Books", (await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = bob.Id.ToString() })).DisplayName);
        var metrics = await Http.GetStringAsync(new Uri($"{node.OpsUrl}/metrics"));
        Assert.Contains("hybrid_sessions_active 1", metrics, StringComparison.Ordinal);
        Assert.Contains("hybrid_lookups_total 3", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APeerGoesOfflineWhenItsSessionEndsOrFallsSilent()
    {
        using var temp = new TempDir();
        using var carol = PeerIdentity.Generate();
        using var dave = PeerIdentity.Generate();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"), FastSessions);

        // Carol closes her session cleanly.
        var connection = new SupernodeConnection(carol, new SupernodeConnectionOptions { Seeds = [node.GrpcUrl], DisplayName = "Carol" });
        connection.Start();
        await connection.WaitForSessionAsync().WaitAsync(Deadline);
        await connection.DisposeAsync();
        await Eventually.TrueAsync(
            async () => !(await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = carol.Id.ToString() })).Online,
            Deadline,
            "Carol to show offline after closing her session");

        // Dave authenticates, then goes silent without closing the stream: the session timeout (2 s) ends it.
        using var raw = await RawSession.OpenAsync(node.Client);
        await raw.SendHelloAsync(RawSession.Proof(dave, raw.Challenge), RawSession.Profile(dave, "Dave", 1));
        var welcome = await raw.ReadAsync();
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, welcome.KindCase);
        // The welcome names the cluster's supernodes: a client needs no call of its own to learn them.
        Assert.Equal([node.GrpcUrl], welcome.Welcome.Supernodes.Select(s => s.Url));
        Assert.True((await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = dave.Id.ToString() })).Online);

        await Eventually.TrueAsync(
            async () => !(await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = dave.Id.ToString() })).Online,
            Deadline,
            "silent Dave to show offline after the session timeout");
        Assert.Contains("no heartbeat", await raw.ExpectStatusAsync(Grpc.Core.StatusCode.DeadlineExceeded), StringComparison.Ordinal);
    }
    [Fact]
    public async Task APeerThatOpensASessionOrARelayAndSendsNothingIsToldSoAndNothingIsLoggedAsAnError()
    {
        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"), [.. FastSessions, "--Supernode:HelloTimeout=00:00:01"]);
        // A session opened, its challenge read, and no hello: refused within the hello timeout.
        using var silent = await RawSession.OpenAsync(node.Client);
        Assert.Contains("no hello within 1 s", await silent.ExpectStatusAsync(Grpc.Core.StatusCode.DeadlineExceeded), StringComparison.Ordinal);
        Assert.Equal(1, await node.MetricAsync("hybrid_sessions_refused_total{reason=\"hello_timeout\"}"));

        // A relay opened with no first frame: the same deadline and the same kind of answer, not a
        // claim that the index is unavailable. A dialer needs no session to be refused this way.
        using var relay = node.Client.Relay.Relay();
        var ex = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => relay.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(Grpc.Core.StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.Contains("no relay frame within 1 s", ex.Status.Detail, StringComparison.Ordinal);

        // Relays whose dialers give up before their first frame, and sessions before their hello.
        using var ownChannel = Grpc.Net.Client.GrpcChannel.ForAddress(node.GrpcUrl);
        var clients = new Protocol.Api.SupernodeClients(ownChannel);
        foreach (var abandoned in Enumerable.Range(0, 25).Select(_ => clients.Relay.Relay()).ToList())
        {
            abandoned.Dispose();
        }

        await Task.WhenAll(Enumerable.Range(0, 25).Select(async _ => (await RawSession.OpenAsync(clients)).Dispose()));
        Assert.Equal(0, await node.MetricAsync("hybrid_sessions_active"));
        Assert.True(!node.Output.Contains("fail:", StringComparison.Ordinal), node.Output);
        Assert.DoesNotContain("failed unexpectedly", node.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("failed transiently", node.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASecondSessionOfOnePeerOnTheSameSupernodeSupersedesTheFirstAtOnce()
    {
        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"), FastSessions);
        using var erin = PeerIdentity.Generate();
        using var first = await RawSession.OpenAsync(node.Client);
        await first.SendHelloAsync(RawSession.Proof(erin, first.Challenge), RawSession.Profile(erin, "Erin", 1));
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await first.ReadAsync()).KindCase);

        using var second = await RawSession.OpenAsync(node.Client);
        await second.SendHelloAsync(RawSession.Proof(erin, second.Challenge));
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await second.ReadAsync()).KindCase);

        // The first session hears at once that it was taken over (not at its next presence renewal,
        // a minute away), and ends without an error; the second goes on.
        var notice = await first.ReadAsync().WaitAsync(Deadline);
        Assert.Equal(SupernodeEvent.KindOneofCase.Superseded, notice.Event?.KindCase);
        await second.SendAsync(new SessionClientMessage { Heartbeat = new Heartbeat { Sequence = 1 } });
        Assert.Equal(SessionServerMessage.KindOneofCase.HeartbeatAck, (await second.ReadAsync()).KindCase);
        Assert.True((await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = erin.Id.ToString() })).Online);
        await Eventually.TrueAsync(
            async () => await node.MetricAsync("hybrid_sessions_ended_total{how=\"superseded\"}") == 1,
            Deadline,
            "the first session to end as superseded");
        Assert.Equal(1, await node.MetricAsync("hybrid_sessions_active"));
        Assert.Equal(0, await node.MetricAsync("hybrid_sessions_ended_total{how=\"error\"}"));
    }

    [Fact]
    public async Task PeersLeavingCleanlyOrByDroppingTheirConnectionLeaveNoErrorInTheSupernodeLog()
    {
        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"), FastSessions);
        var identities = Enumerable.Range(0, 6).Select(_ => PeerIdentity.Generate()).ToList();
        var clean = identities.Take(2).Select(id => new SupernodeConnection(id, new SupernodeConnectionOptions { Seeds = [node.GrpcUrl], DisplayName = "leaving peer" })).ToList();
        // The others speak through connections this test can cut: their sockets are reset under them
        // (a laptop lid closing), or their call is cancelled (the stream reset).
        var sockets = new System.Collections.Concurrent.ConcurrentBag<System.Net.Sockets.Socket>();
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                sockets.Add(socket);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        };
        using var cut = Grpc.Net.Client.GrpcChannel.ForAddress(node.GrpcUrl, new Grpc.Net.Client.GrpcChannelOptions { HttpHandler = handler });
        using var ownChannel = Grpc.Net.Client.GrpcChannel.ForAddress(node.GrpcUrl);
        var raw = new List<RawSession>();
        try
        {
            clean.ForEach(c => c.Start());
            await Task.WhenAll(clean.Select(c => c.WaitForSessionAsync().WaitAsync(Deadline)));
            foreach (var (identity, i) in identities.Skip(2).Select((id, i) => (id, i)))
            {
                var session = await RawSession.OpenAsync(new Protocol.Api.SupernodeClients(i < 2 ? cut : ownChannel));
                await session.SendHelloAsync(RawSession.Proof(identity, session.Challenge), RawSession.Profile(identity, "leaving peer", 1));
                Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await session.ReadAsync()).KindCase);
                raw.Add(session);
            }

            Assert.Equal(6, await node.MetricAsync("hybrid_sessions_active"));
            // Peers that give up during the handshake (challenge read, stream reset before the hello):
            // the reset may reach the supernode's read of the hello before the call is marked aborted.
            await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ => (await RawSession.OpenAsync(new Protocol.Api.SupernodeClients(ownChannel))).Dispose()));

            foreach (var connection in clean)
            {
                await connection.DisposeAsync();
            }

            foreach (var socket in sockets)
            {
                socket.Close(0);
            }

            raw.Skip(2).ToList().ForEach(r => r.Dispose());
            // Each session ends as the peer ending it ("closed") or its stream or connection cut ("dropped"), never as an error.
            await Eventually.TrueAsync(
                async () => await node.MetricAsync("hybrid_sessions_ended_total{how=\"closed\"}") + await node.MetricAsync("hybrid_sessions_ended_total{how=\"dropped\"}") == 6,
                Deadline,
                "all six sessions to end as closed or dropped once their peers left");
            Assert.Equal(0, await node.MetricAsync("hybrid_sessions_active"));
            Assert.Equal(0, await node.MetricAsync("hybrid_sessions_ended_total{how=\"error\"}"));
            // Nothing is logged as an error (a readiness probe that finds the silo still starting included).
            Assert.True(!node.Output.Contains("fail:", StringComparison.Ordinal), node.Output);
            Assert.DoesNotContain("failed unexpectedly", node.Output, StringComparison.Ordinal);
        }
        finally
        {
            raw.ForEach(r => r.Dispose());
            foreach (var connection in clean)
            {
                await connection.DisposeAsync();
            }

            identities.ForEach(i => i.Dispose());
        }
    }
}
