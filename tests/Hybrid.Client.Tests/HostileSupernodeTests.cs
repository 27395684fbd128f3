using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Hybrid.Client.Tests;

/// <summary>
/// A supernode that substitutes its own key for a peer's (to read mail sealed to it) is caught by the
/// client, which drops its answer, counts it against that supernode, and asks the next one.
/// </summary>
public sealed class HostileSupernodeTests : IAsyncLifetime, IDisposable
{
    private readonly PeerIdentity _peer = PeerIdentity.Generate();
    private readonly PeerIdentity _hostileKey = PeerIdentity.Generate();
    private LoopbackGrpcServer _hostile = null!;
    private LoopbackGrpcServer _honest = null!;

    public async Task InitializeAsync()
    {
        _hostile = await LoopbackGrpcServer.StartAsync<Directory>(s => s.AddSingleton(new Directory(_peer.Id, _hostileKey.PublicKey)));
        _honest = await LoopbackGrpcServer.StartAsync<Directory>(s => s.AddSingleton(new Directory(_peer.Id, _peer.PublicKey)));
    }

    public async Task DisposeAsync()
    {
        await _hostile.DisposeAsync();
        await _honest.DisposeAsync();
    }

    public void Dispose()
    {
        _peer.Dispose();
        _hostileKey.Dispose();
    }

    [Fact]
    public async Task ASubstitutedKeyIsDroppedCountedAgainstItsSupernodeAndTheNextOneAsked()
    {
        using var me = PeerIdentity.Generate();
        var hostileUrl = _hostile.Url;
        await using var connection = new SupernodeConnection(me, new SupernodeConnectionOptions { Seeds = [hostileUrl, _honest.Url], DisplayName = "Me" });
        var reported = new List<ForgedAnswerException>();
        connection.ForgedAnswerReceived += (_, e) => reported.Add(e);

        var info = await connection.LookupPeerAsync(_peer.Id);

        Assert.Equal(_peer.PublicKey, info.PublicKey.ToByteArray());
        Assert.Equal(1, connection.ForgedAnswers);
        var forged = Assert.Single(reported);
        Assert.Equal(hostileUrl, forged.SupernodeUrl);
    }

    [Fact]
    public async Task WhenEverySupernodeLiesTheLookUpFailsInsteadOfReturningAForgery()
    {
        using var me = PeerIdentity.Generate();
        await using var connection = new SupernodeConnection(me, new SupernodeConnectionOptions { Seeds = [_hostile.Url], DisplayName = "Me" });

        var ex = await Assert.ThrowsAsync<RpcException>(() => connection.LookupPeerAsync(_peer.Id));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Contains("verifies", ex.Status.Detail, StringComparison.Ordinal);
    }


    /// <summary>A supernode's directory that answers every look-up of one peer with the key it chooses.</summary>
    private sealed class Directory(PeerId peer, byte[] key) : DirectoryApi.DirectoryApiBase
    {
        public override Task<PeerInfo> LookupPeer(LookupPeerRequest request, ServerCallContext context) =>
            Task.FromResult(new PeerInfo { PeerId = peer.ToString(), PublicKey = ByteString.CopyFrom(key), Online = true });
    }
}
