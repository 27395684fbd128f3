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

    /// <summary>What the scripted supernode answers.</summary>
    private sealed class Membership
    {
        public volatile string[] Urls = [];
        public volatile bool RefuseProfiles;
        public int ProfilesRefused;
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
