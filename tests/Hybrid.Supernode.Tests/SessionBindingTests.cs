using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Hybrid.Supernode.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A session is bound to the supernode its peer meant to reach: the proof names the URL the peer
/// dialed, so a hostile server relaying a real supernode's challenge cannot hold the peer's session there.
/// </summary>
public sealed class SessionBindingTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IAsyncLifetime
{
    private LoopbackGrpcServer _relay = null!;
    private GrpcChannel _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = GrpcChannel.ForAddress(fixture.Node.GrpcUrl);
        _relay = await LoopbackGrpcServer.StartAsync<RelayingDirectory>(s => s.AddSingleton(new DirectoryApi.DirectoryApiClient(_upstream)));
    }

    public async Task DisposeAsync()
    {
        await _relay.DisposeAsync();
        _upstream.Dispose();
    }

    [Fact]
    public async Task AProofNamingAnotherSupernodesUrlIsRefused()
    {
        using var peer = PeerIdentity.Generate();
        using var session = await RawSession.OpenAsync(fixture.Node.Client);
        var now = DateTimeOffset.UtcNow;
        var body = new SessionProof { Challenge = session.Challenge.Nonce, SupernodeId = session.Challenge.SupernodeId, DialedUrl = "https://203.0.113.9:5000" };

        await session.SendHelloAsync(SignedEnvelopes.Sign(peer, EnvelopeKinds.SessionProof, 1, body, now, now.AddMinutes(1)));

        Assert.Contains("not this supernode", await session.ExpectStatusAsync(StatusCode.Unauthenticated), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerRelayingARealSupernodesChallengeGetsNoSessionForThePeer()
    {
        using var victim = PeerIdentity.Generate();
        var relayUrl = _relay.Url;
        await using var connection = new SupernodeConnection(victim, new SupernodeConnectionOptions { Seeds = [relayUrl], DisplayName = "Victim", MaxBackoff = TimeSpan.FromMilliseconds(500) });
        connection.Start();

        // The victim keeps trying the only supernode it knows; every attempt is refused upstream.
        await Hybrid.Testing.Eventually.TrueAsync(
            () => Task.FromResult(connection.LastFailure?.Contains("not this supernode", StringComparison.Ordinal) == true),
            TimeSpan.FromSeconds(30),
            "the real supernode to refuse the proof the relaying server passed on");
        Assert.False(connection.InSession);
        var lookup = await Assert.ThrowsAsync<RpcException>(() => fixture.Node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = victim.Id.ToString() }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, lookup.StatusCode);
    }

    /// <summary>A hostile directory that pipes a client's session to a real supernode, both ways.</summary>
    private sealed class RelayingDirectory(DirectoryApi.DirectoryApiClient upstream) : DirectoryApi.DirectoryApiBase
    {
        public override async Task Session(IAsyncStreamReader<SessionClientMessage> requestStream, IServerStreamWriter<SessionServerMessage> responseStream, ServerCallContext context)
        {
            using var call = upstream.Session(cancellationToken: context.CancellationToken);
            var up = Task.Run(async () =>
            {
                await foreach (var message in requestStream.ReadAllAsync(context.CancellationToken))
                {
                    await call.RequestStream.WriteAsync(message, context.CancellationToken);
                }
            });
            await foreach (var message in call.ResponseStream.ReadAllAsync(context.CancellationToken))
            {
                await responseStream.WriteAsync(message, context.CancellationToken);
            }

            await up.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        }
    }
}
