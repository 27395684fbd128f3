using Google.Protobuf;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>One embedded supernode process shared by a test class, started with <paramref name="arguments"/>.</summary>
public abstract class SupernodeProcessFixture(params string[] arguments) : IAsyncLifetime, IDisposable
{
    private readonly TempDir _temp = new();

    internal SupernodeProcess Node { get; private set; } = null!;

    public async Task InitializeAsync() => Node = await SupernodeProcess.StartAsync(_temp.Sub("data"), arguments);

    public async Task DisposeAsync()
    {
        await Node.DisposeAsync();
        _temp.Dispose();
    }

    public void Dispose()
    {
        _temp.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>One embedded supernode shared by the bad-input tests (and others); each test also checks it still serves.</summary>
public sealed class SupernodeFixture() : SupernodeProcessFixture("--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:03");

public sealed class BadInputTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly PeerIdentity _peer = PeerIdentity.Generate();

    private Protocol.Api.SupernodeClients Client => fixture.Node.Client;

    public void Dispose() => _peer.Dispose();

    private static async Task<RpcException> Refused(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);

    /// <summary>After any refusal the supernode must go on serving well-formed clients.</summary>
    private async Task AssertStillServingAsync()
    {
        using var someone = PeerIdentity.Generate();
        using var session = await RawSession.OpenAsync(Client);
        await session.SendHelloAsync(RawSession.Proof(someone, session.Challenge), RawSession.Profile(someone, "Still here", 1));
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await session.ReadAsync()).KindCase);
        Assert.True((await Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = someone.Id.ToString() })).Online);
    }

    private static async Task<string> OpenSessionAsync(PeerIdentity identity, RawSession session, ulong profileVersion = 1)
    {
        await session.SendHelloAsync(RawSession.Proof(identity, session.Challenge), RawSession.Profile(identity, "Erin", profileVersion));
        var welcome = await session.ReadAsync();
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, welcome.KindCase);
        return welcome.Welcome.SessionToken;
    }

    [Fact]
    public async Task AnOversizedMessageIsResourceExhausted()
    {
        var ex = await Refused(() => Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = new string('A', 1024 * 1024) }).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        await AssertStillServingAsync();
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("not-a-peer-id", "characters")]
    [InlineData("ABCDEFG-HIJKLMN-OPQRSTU-VWXYZ01-ABCDEFG-HIJKLMN-OPQRSTU-VWXYZ23", "not a base32 character")]
    public async Task AMalformedPeerIdIsInvalidArgumentWithAReason(string peerId, string reason)
    {
        var ex = await Refused(() => Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = peerId }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(reason, ex.Status.Detail, StringComparison.Ordinal);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task AnUnknownPeerIsNotFound()
    {
        var ex = await Refused(() => Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = _peer.Id.ToString() }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Contains(_peer.Id.ToString(), ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AForgedSessionProofIsUnauthenticated()
    {
        using var mallory = PeerIdentity.Generate();
        using var session = await RawSession.OpenAsync(Client);
        var proof = RawSession.Proof(mallory, session.Challenge);
        proof.SignerPublicKey = ByteString.CopyFrom(_peer.PublicKey); // claims to be the victim

        await session.SendHelloAsync(proof);

        Assert.Contains("signature does not verify", await session.ExpectStatusAsync(StatusCode.Unauthenticated), StringComparison.Ordinal);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task ASessionReplayedWithAnOldChallengeIsUnauthenticated()
    {
        using var first = await RawSession.OpenAsync(Client);
        var recorded = RawSession.Proof(_peer, first.Challenge);
        using var second = await RawSession.OpenAsync(Client);

        await second.SendHelloAsync(recorded);

        Assert.Contains("another challenge", await second.ExpectStatusAsync(StatusCode.Unauthenticated), StringComparison.Ordinal);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task AFirstMessageThatIsNotAHelloIsInvalidArgument()
    {
        using var session = await RawSession.OpenAsync(Client);

        await session.SendAsync(new SessionClientMessage { Heartbeat = new Heartbeat { Sequence = 1 } });

        Assert.Contains("hello", await session.ExpectStatusAsync(StatusCode.InvalidArgument), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAuthenticatedCallWithoutASessionIsUnauthenticated()
    {
        var ex = await Refused(() => Client.Directory.PublishProfileAsync(RawSession.Profile(_peer, "Erin", 2)).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Contains("hybrid-session", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AProfileWithAForgedSignatureIsPermissionDenied()
    {
        using var session = await RawSession.OpenAsync(Client);
        var token = await OpenSessionAsync(_peer, session);
        var forged = RawSession.Profile(_peer, "Erin (official)", 2);
        var payload = forged.Payload.ToByteArray();
        payload[^1] ^= 0x20;
        forged.Payload = ByteString.CopyFrom(payload);

        var ex = await Refused(() => Client.Directory.PublishProfileAsync(forged, new Metadata { { "hybrid-session", token } }).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task AProfileSignedBySomeoneElseIsPermissionDenied()
    {
        using var mallory = PeerIdentity.Generate();
        using var session = await RawSession.OpenAsync(Client);
        var token = await OpenSessionAsync(_peer, session);

        var ex = await Refused(() => Client.Directory.PublishProfileAsync(RawSession.Profile(mallory, "Not Erin", 9), new Metadata { { "hybrid-session", token } }).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
    }

    [Fact]
    public async Task AnOlderProfileVersionIsRefusedAndTheNewerOneStays()
    {
        using var session = await RawSession.OpenAsync(Client);
        var token = await OpenSessionAsync(_peer, session, profileVersion: 5);
        var headers = new Metadata { { "hybrid-session", token } };
        var newer = await Client.Directory.PublishProfileAsync(RawSession.Profile(_peer, "Erin v6", 6), headers);
        Assert.Equal(6UL, newer.Version);

        var ex = await Refused(() => Client.Directory.PublishProfileAsync(RawSession.Profile(_peer, "Erin v4", 4), headers).ResponseAsync);

        Assert.Equal(StatusCode.AlreadyExists, ex.StatusCode);
        Assert.Contains("not newer", ex.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("Erin v6", (await Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = _peer.Id.ToString() })).DisplayName);
    }

    [Theory]
    [InlineData("not-a-review", 0, "", StatusCode.InvalidArgument)]
    [InlineData("0123456789ABCDEF0123456789ABCDEF", 0, "", StatusCode.InvalidArgument)]
    [InlineData("0123456789abcdef0123456789abcdef", -1, "", StatusCode.InvalidArgument)]
    [InlineData("0123456789abcdef0123456789abcdef", 101, "", StatusCode.InvalidArgument)]
    [InlineData("0123456789abcdef0123456789abcdef", 0, "-5", StatusCode.InvalidArgument)]
    [InlineData("0123456789abcdef0123456789abcdef", 0, "", StatusCode.NotFound)]
    public async Task AReviewHistoryRequestIsCheckedBeforeAnythingIsLookedUp(string reviewId, int limit, string token, StatusCode expected)
    {
        var ex = await Refused(() => Client.Reputation.ListReviewHistoryAsync(new ListReviewHistoryRequest { ReviewId = reviewId, Limit = limit, PageToken = token }).ResponseAsync);

        Assert.Equal(expected, ex.StatusCode);
        Assert.False(string.IsNullOrWhiteSpace(ex.Status.Detail));
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task AnEndpointThatIsNotHttpsIsInvalidArgument()
    {
        using var session = await RawSession.OpenAsync(Client);
        var now = DateTimeOffset.UtcNow;
        var body = new SessionProof { Challenge = session.Challenge.Nonce, SupernodeId = session.Challenge.SupernodeId, DialedUrl = session.Challenge.SupernodeUrl };
        body.Endpoints.Add(new PeerEndpoint { Url = "javascript:alert(1)" });
        var proof = Protocol.Envelopes.SignedEnvelopes.Sign(_peer, Protocol.Envelopes.EnvelopeKinds.SessionProof, 1, body, now, now.AddMinutes(1));

        await session.SendHelloAsync(proof);

        Assert.Contains("https://", await session.ExpectStatusAsync(StatusCode.InvalidArgument), StringComparison.Ordinal);
    }
}

public sealed class RateLimitTests
{
    [Fact]
    public async Task AClientOverItsRateIsResourceExhaustedWhileTheSupernodeKeepsServing()
    {
        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"), "--Supernode:RequestsPerSecond=5", "--Supernode:RequestBurst=5");
        var codes = new List<StatusCode>();
        for (var i = 0; i < 20; i++)
        {
            try
            {
                await node.Client.Directory.ListSupernodesAsync(new ListSupernodesRequest());
                codes.Add(StatusCode.OK);
            }
            catch (RpcException ex)
            {
                codes.Add(ex.StatusCode);
                Assert.Contains("rate limit", ex.Status.Detail, StringComparison.Ordinal);
            }
        }

        Assert.Contains(StatusCode.OK, codes);
        Assert.Contains(StatusCode.ResourceExhausted, codes);
        Assert.All(codes, c => Assert.True(c is StatusCode.OK or StatusCode.ResourceExhausted, $"unexpected {c}"));
        await Eventually.TrueAsync(
            async () => (await node.Client.Directory.ListSupernodesAsync(new ListSupernodesRequest())).Supernodes.Count == 1,
            TimeSpan.FromSeconds(10),
            "the limit to refill and calls to succeed again");
    }
}
