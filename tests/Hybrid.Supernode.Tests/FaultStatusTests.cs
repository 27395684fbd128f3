using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

public sealed class FaultStatusTests
{
    [Fact]
    public async Task AStorageOutageReachesClientsAsUnavailableNotUnknown()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var node = cluster.Nodes[0];
        using var stranger = PeerIdentity.Generate();

        await cluster.Redis.StopAsync();
        // Looking up a peer nobody has activated yet needs a storage read, which now fails.
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = stranger.Id.ToString() }, deadline: DateTime.UtcNow.AddSeconds(90)).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Contains("retry", ex.Status.Detail, StringComparison.Ordinal);
    }
}
