using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>Reviews live in the cluster, not with any one supernode (and never with the reviewed party).</summary>
public sealed class ReputationClusterTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(45);
    private static readonly string[] FastFailure = ["--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:03"];

    [Fact]
    public async Task AReviewSubmittedThroughOneSupernodeIsSeenThroughAnotherAndSurvivesKillingSupernodes()
    {
        // Four supernodes: Orleans declares a silo dead on two votes, so two must survive the second kill.
        await using var cluster = await TestCluster.StartAsync(4, FastFailure);
        using var buyer = PeerIdentity.Generate();
        using var seller = PeerIdentity.Generate();
        var receipt = Trades.Complete(buyer, seller, price: 80m);
        var submitted = await cluster.Nodes[0].Client.Reputation.SubmitReviewAsync(Trades.Review(buyer, seller.Id, receipt, 2, "slow shipping"));

        await SeenThroughAsync(cluster.Nodes[2], seller.Id, submitted.ReviewId);

        // kill -9 one supernode at a time; whichever hosted the review's grains, the others still answer from storage.
        foreach (var (victim, survivors) in new[] { (0, new[] { 1, 2, 3 }), (1, new[] { 2, 3 }) })
        {
            cluster.Nodes[victim].KillHard();
            foreach (var survivor in survivors)
            {
                await SeenThroughAsync(cluster.Nodes[survivor], seller.Id, submitted.ReviewId);
            }
        }
    }

    private static async Task SeenThroughAsync(SupernodeProcess node, PeerId reviewed, string reviewId)
    {
        // The review and the reviewed peer's reputation may live on different silos: each answers
        // once the cluster has moved it off a dead one.
        var (page, reputation) = await Eventually.ReturnsAsync(
            async () => (
                await node.Client.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = reviewed.ToString() }, deadline: DateTime.UtcNow.AddSeconds(5)).ResponseAsync,
                await node.Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = reviewed.ToString() }, deadline: DateTime.UtcNow.AddSeconds(5)).ResponseAsync),
            r => r.Item1.Reviews.Count == 1 && r.Item2.Count == 1,
            Deadline,
            $"{node.GrpcUrl} to list the review and count it in the reputation");
        Assert.Equal((reviewId, 2u, "slow shipping"), (page.Reviews[0].ReviewId, page.Reviews[0].Stars, page.Reviews[0].Text));
        Assert.Equal(2.0, reputation.Average);
    }
}
