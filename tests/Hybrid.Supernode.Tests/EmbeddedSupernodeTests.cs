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
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await raw.ReadAsync()).KindCase);
        Assert.True((await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = dave.Id.ToString() })).Online);

        await Eventually.TrueAsync(
            async () => !(await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = dave.Id.ToString() })).Online,
            Deadline,
            "silent Dave to show offline after the session timeout");
        Assert.Contains("no heartbeat", await raw.ExpectStatusAsync(Grpc.Core.StatusCode.DeadlineExceeded), StringComparison.Ordinal);
    }
}
