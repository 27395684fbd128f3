using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Hybrid.Client.Tests;

/// <summary>
/// The connection's list of supernodes follows the cluster's membership (seeds kept, the departed
/// forgotten, floods capped), and a profile superseded elsewhere does not lock the peer out.
/// </summary>
public sealed class ConnectionHygieneTests : IAsyncLifetime, IDisposable
{
    private readonly Membership _membership = new();
    private readonly PeerIdentity _me = PeerIdentity.Generate();
    private LoopbackGrpcServer _supernode = null!;

    public async Task InitializeAsync() =>
        _supernode = await LoopbackGrpcServer.StartAsync<ScriptedDirectory>(s => s.AddSingleton(_membership));

    public async Task DisposeAsync() => await _supernode.DisposeAsync();

    public void Dispose() => _me.Dispose();

    private string Url => _supernode.Url;

    private SupernodeConnection Connect() => new(_me, new SupernodeConnectionOptions
    {
        Seeds = [Url],
        DisplayName = "Me",
        ConnectTimeout = TimeSpan.FromMilliseconds(300),
        InitialBackoff = TimeSpan.FromMilliseconds(50),
        MaxBackoff = TimeSpan.FromMilliseconds(200),
        SupernodeListRefresh = TimeSpan.FromMilliseconds(200),
    });

    [Fact]
    public async Task SupernodesThatLeftTheMembershipAreForgottenAndTheSeedsKept()
    {
        _membership.Urls = ["http://198.51.100.1:5000", "http://198.51.100.2:5000"];
        _membership.RefuseProfiles = true;
        await using var connection = Connect();
        connection.Start();
        await Hybrid.Testing.Eventually.TrueAsync(() => Task.FromResult(connection.KnownSupernodes.Contains("http://198.51.100.1:5000")), TimeSpan.FromSeconds(20), "the first membership to be learned");

        _membership.Urls = ["http://198.51.100.2:5000"];

        await Hybrid.Testing.Eventually.TrueAsync(
            () => Task.FromResult(!connection.KnownSupernodes.Contains("http://198.51.100.1:5000")),
            TimeSpan.FromSeconds(20),
            "the supernode that left the membership to be forgotten");
        Assert.Contains(Url, connection.KnownSupernodes);
        Assert.Contains("http://198.51.100.2:5000", connection.KnownSupernodes);
    }

    [Fact]
    public async Task AFloodOfSupernodeUrlsIsCappedAndWhatIsNotAUrlIsIgnored()
    {
        _membership.Urls = [.. Enumerable.Range(0, 10_000).Select(i => $"http://198.51.100.{i % 250}:{5000 + (i / 250)}"), "javascript:alert(1)", new string('x', 5000)];
        await using var connection = Connect();
        connection.Start();

        await Hybrid.Testing.Eventually.TrueAsync(() => Task.FromResult(connection.KnownSupernodes.Count > 1), TimeSpan.FromSeconds(20), "the membership to be learned");

        Assert.InRange(connection.KnownSupernodes.Count, 2, SupernodeConnection.MaxKnownSupernodes + 1);
        Assert.All(connection.KnownSupernodes, u => Assert.StartsWith("http://", u, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AProfileSupersededElsewhereDoesNotKeepThePeerOutOfItsSession()
    {
        _membership.Urls = [];
        _membership.RefuseProfiles = true;
        await using var connection = Connect();
        connection.Start();

        await connection.WaitForSessionAsync().WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(connection.InSession);
        Assert.True(_membership.ProfilesRefused >= 1, "the supernode never refused the stale profile: the test proves nothing");
    }

    [Fact]
    public async Task APeerKeepsNoConnectionToASupernodeThatRefusedItsSessionOnceInSessionElsewhere()
    {
        // After a supernode dies its peers try the survivors one after another: a connection left
        // open at each one that failed would be held on both sides for as long as the peer runs.
        var refusing = new Membership { RefuseSessions = true };
        await using var busy = await LoopbackGrpcServer.StartAsync<ScriptedDirectory>(s => s.AddSingleton(refusing));
        await using var connection = new SupernodeConnection(_me, new SupernodeConnectionOptions
        {
            Seeds = [busy.Url, Url],
            DisplayName = "Me",
            ConnectTimeout = TimeSpan.FromSeconds(5),
            InitialBackoff = TimeSpan.FromMilliseconds(50),
            MaxBackoff = TimeSpan.FromMilliseconds(200),
        });
        connection.Start();
        await connection.WaitForSessionAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(Url, connection.CurrentSupernode);
        Assert.True(refusing.SessionsRefused >= 1, "the first seed was never tried");

        await Hybrid.Testing.Eventually.TrueAsync(
            () => Task.FromResult(EstablishedTo(new Uri(busy.Url).Port) == 0),
            TimeSpan.FromSeconds(20),
            $"the connection to the supernode that refused the session to be closed ({EstablishedTo(new Uri(busy.Url).Port)} open)");
        Assert.True(EstablishedTo(new Uri(Url).Port) >= 1, "the session's own connection is open");
    }

    /// <summary>Established TCP connections whose local port is <paramref name="port"/> (the server's side of them), from the kernel's table.</summary>
    private static int EstablishedTo(int port) =>
        new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists).SelectMany(File.ReadLines).Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f.Length > 3 && f[1].EndsWith($":{port:X4}", StringComparison.Ordinal) && f[3] == "01");

    /// <summary>What the scripted supernode answers.</summary>
    private sealed class Membership
    {
        public volatile string[] Urls = [];
        public volatile bool RefuseProfiles;
        public int ProfilesRefused;
        public volatile bool RefuseSessions;
        public int SessionsRefused;
    }

    /// <summary>A supernode whose membership list is scripted, and which holds a newer profile than the client's.</summary>
    private sealed class ScriptedDirectory(Membership membership) : DirectoryApi.DirectoryApiBase
    {
        public override Task<ListSupernodesResponse> ListSupernodes(ListSupernodesRequest request, ServerCallContext context)
        {
            var response = new ListSupernodesResponse();
            response.Supernodes.AddRange(membership.Urls.Select(u => new SupernodeInfo { Url = u }));
            return Task.FromResult(response);
        }

        public override async Task Session(IAsyncStreamReader<SessionClientMessage> requestStream, IServerStreamWriter<SessionServerMessage> responseStream, ServerCallContext context)
        {
            await responseStream.WriteAsync(new SessionServerMessage { Challenge = new SessionChallenge { Nonce = ByteString.CopyFrom(new byte[32]), SupernodeId = "sn-scripted" } });
            if (!await requestStream.MoveNext())
            {
                return;
            }

            if (membership.RefuseSessions)
            {
                Interlocked.Increment(ref membership.SessionsRefused);
                throw new RpcException(new Status(StatusCode.Unavailable, "this supernode is too busy to open sessions; try another"));
            }

            if (requestStream.Current.Hello.Profile is not null && membership.RefuseProfiles)
            {
                Interlocked.Increment(ref membership.ProfilesRefused);
                throw new RpcException(new Status(StatusCode.AlreadyExists, "hybrid.profile.v1 version 1 is not newer than the stored version 2"));
            }

            await responseStream.WriteAsync(new SessionServerMessage { Welcome = new SessionWelcome { PeerId = "x", SessionToken = "t", HeartbeatIntervalMs = 200, SessionTimeoutMs = 5000 } });
            while (await requestStream.MoveNext())
            {
                await responseStream.WriteAsync(new SessionServerMessage { HeartbeatAck = new HeartbeatAck { Sequence = requestStream.Current.Heartbeat.Sequence } });
            }
        }
    }
}
