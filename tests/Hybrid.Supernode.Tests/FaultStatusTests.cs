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

    [Fact]
    public async Task AfterARedisCrashTheClusterAnswersUnavailableThenRecoversByItselfWithNothingAcknowledgedLost()
    {
        using var temp = new TempDir();
        Directory.CreateDirectory(temp.Sub("redis"));
        await using var redis = await RedisServer.StartAsync(temp.Sub("redis"));
        await using var cluster = await TestCluster.StartAsync(1, redis, []);
        var node = cluster.Nodes[0];
        using var seller = PeerIdentity.Generate();
        var acknowledged = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            var listing = ListingFactory.Listing($"Ceramic mug no. {i}");
            await node.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, listing));
            acknowledged.Add(listing.ListingId);
        }

        // Redis is killed (kill -9, as a crash): writes answer Unavailable, with a sentence, never Internal.
        await redis.StopAsync();
        var during = ListingFactory.Listing("Published during the outage");
        var refused = await Assert.ThrowsAsync<RpcException>(() => node.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, during), deadline: DateTime.UtcNow.AddSeconds(60)).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);

        // Redis comes back from its append-only file: the supernode recovers without a restart, and
        // every listing acknowledged before the crash is there.
        await redis.RestartAsync();
        var after = ListingFactory.Listing("Published after the outage");
        await Eventually.ReturnsAsync(
            async () =>
            {
                try
                {
                    await node.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, after), deadline: DateTime.UtcNow.AddSeconds(10));
                    return true;
                }
                catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
                {
                    return false;
                }
            },
            published => published,
            TimeSpan.FromSeconds(60),
            "the supernode to take writes again once Redis is back");
        foreach (var id in acknowledged)
        {
            var record = await node.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = id });
            Assert.Equal(ListingState.Active, record.State);
        }
    }
}
