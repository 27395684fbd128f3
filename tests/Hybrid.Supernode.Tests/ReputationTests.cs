using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>Reviews and trust on real supernodes: what is refused, what cannot be removed, and what a Sybil ring gains.</summary>
public sealed class ReputationTests : IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly TempDir _temp = new();
    private readonly PeerIdentity _seed = PeerIdentity.Generate();
    private SupernodeProcess _node = null!;

    private Protocol.Api.SupernodeClients Client => _node.Client;

    public async Task InitializeAsync() =>
        _node = await SupernodeProcess.StartAsync(_temp.Sub("sn"), $"--Supernode:PreTrustedPeers={_seed.Id}", "--Supernode:TrustRecomputeInterval=00:00:00.500", "--Supernode:RequestsPerSecond=100000", "--Supernode:RequestBurst=100000");

    public async Task DisposeAsync() => await _node.DisposeAsync();

    public void Dispose()
    {
        _seed.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task ReviewsWithoutAReceiptWithAForgedOneByAThirdPartyOrTwiceAreRefusedWithTheirReason()
    {
        using var buyer = PeerIdentity.Generate();
        using var seller = PeerIdentity.Generate();
        using var stranger = PeerIdentity.Generate();
        var receipt = Trades.Complete(buyer, seller);

        var noReceipt = await Refused(Reviews.Sign(buyer, new Review { Reviewed = seller.Id.ToString(), Stars = 1, Text = "never bought anything" }, 1, DateTimeOffset.UtcNow));
        Assert.Equal(StatusCode.InvalidArgument, noReceipt.StatusCode);
        Assert.Contains("receipt", noReceipt.Status.Detail, StringComparison.Ordinal);

        var forged = receipt.Clone();
        forged.Completion = Trades.Complete(buyer, seller).Completion;
        var forgedReceipt = await Refused(Trades.Review(buyer, seller.Id, forged, 1));
        Assert.Equal(StatusCode.InvalidArgument, forgedReceipt.StatusCode);
        Assert.Contains("receipt does not verify", forgedReceipt.Status.Detail, StringComparison.Ordinal);

        var thirdParty = await Refused(Trades.Review(stranger, seller.Id, receipt, 1));
        Assert.Equal(StatusCode.PermissionDenied, thirdParty.StatusCode);

        var first = await Client.Reputation.SubmitReviewAsync(Trades.Review(buyer, seller.Id, receipt, 4, "good", version: 1));
        var again = await Refused(Trades.Review(buyer, seller.Id, receipt, 5, "a second review of the same order", version: 1));
        Assert.Equal(StatusCode.AlreadyExists, again.StatusCode);
        Assert.Contains("already reviewed", again.Status.Detail, StringComparison.Ordinal);

        // An amendment (newer version) replaces it and keeps the history.
        var amended = await Client.Reputation.SubmitReviewAsync(Trades.Review(buyer, seller.Id, receipt, 2, "it broke after a week", version: 2));
        Assert.Equal(first.ReviewId, amended.ReviewId);
        var listed = Assert.Single((await Client.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = seller.Id.ToString() })).Reviews);
        Assert.Equal((2u, "it broke after a week", 2UL), (listed.Stars, listed.Text, listed.Version));
        Assert.Single(listed.History);
        var reputation = await Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = seller.Id.ToString() });
        Assert.Equal((1L, 2.0), (reputation.Count, reputation.Average));
    }

    [Fact]
    public async Task TheSellerCannotRemoveABadReviewButItsReplyIsShownBesideIt()
    {
        using var buyer = PeerIdentity.Generate();
        using var seller = PeerIdentity.Generate();
        var receipt = Trades.Complete(buyer, seller);
        var review = await Client.Reputation.SubmitReviewAsync(Trades.Review(buyer, seller.Id, receipt, 1, "arrived broken, no answer for two weeks"));

        // The seller signing "its own version" of the buyer's review is not a review by the buyer:
        // it becomes the seller's review of the buyer, or is refused; the buyer's stays.
        var overwrite = await Refused(Trades.Review(seller, seller.Id, receipt, 5, "all good"));
        Assert.Equal(StatusCode.InvalidArgument, overwrite.StatusCode);
        var now = DateTimeOffset.UtcNow;
        var notTheirs = await Assert.ThrowsAsync<RpcException>(() => Client.Reputation.ReplyToReviewAsync(Reviews.SignReply(buyer, review.ReviewId, "replying to myself", 1, now)).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, notTheirs.StatusCode);

        await Client.Reputation.ReplyToReviewAsync(Reviews.SignReply(seller, review.ReviewId, "Sorry, the courier lost our mail; refund sent.", 1, now));

        var shown = Assert.Single((await Client.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = seller.Id.ToString() })).Reviews);
        Assert.Equal((1u, "arrived broken, no answer for two weeks"), (shown.Stars, shown.Text));
        Assert.Equal("Sorry, the courier lost our mail; refund sent.", shown.ReplyText);
        Assert.Equal(seller.PublicKey, shown.Reply.SignerPublicKey.ToByteArray());
        Assert.Equal(buyer.PublicKey, shown.Envelope.SignerPublicKey.ToByteArray());
    }

    [Fact]
    public async Task ASybilRingEndsWithLessTrustThanAnHonestSellerAndRanksBelowIt()
    {
        using var honest = PeerIdentity.Generate();
        var buyers = Enumerable.Range(0, 10).Select(_ => PeerIdentity.Generate()).ToList();
        var ring = Enumerable.Range(0, 50).Select(_ => PeerIdentity.Generate()).ToList();
        try
        {
            // The honest seller: 10 real trades with buyers the pre-trusted peer has traded with and vouched for.
            foreach (var buyer in buyers)
            {
                var vouch = Trades.Complete(buyer, _seed);
                await Client.Reputation.SubmitReviewAsync(Trades.Review(_seed, buyer.Id, vouch, 5));
                var trade = Trades.Complete(buyer, honest);
                await Client.Reputation.SubmitReviewAsync(Trades.Review(buyer, honest.Id, trade, 5, "exactly as described"));
            }

            // The ring: 50 fresh identities that only trade with each other, every one rating the other 5 stars.
            for (var i = 0; i < ring.Count; i++)
            {
                var (a, b) = (ring[i], ring[(i + 1) % ring.Count]);
                var trade = Trades.Complete(a, b);
                await Client.Reputation.SubmitReviewAsync(Trades.Review(a, b.Id, trade, 5, "amazing seller"));
                await Client.Reputation.SubmitReviewAsync(Trades.Review(b, a.Id, trade, 5, "amazing buyer"));
            }

            var honestReputation = await Eventually.ReturnsAsync(
                () => Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = honest.Id.ToString() }).ResponseAsync,
                r => r.TrustPeers >= 62,
                Deadline,
                "global trust to be recomputed over every reviewed peer");
            var ringReputations = await Task.WhenAll(ring.Select(r => Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = r.Id.ToString() }).ResponseAsync));
            Assert.Equal(10, honestReputation.Count);
            Assert.All(ringReputations, r => Assert.Equal(5.0, r.Average));
            Assert.All(ringReputations, r => Assert.True(r.Trust < honestReputation.Trust, $"ring member trust {r.Trust:E2} >= honest {honestReputation.Trust:E2}"));
            Assert.True(honestReputation.TrustScore > 0);
            Assert.All(ringReputations, r => Assert.Equal(0, r.TrustScore));

            // Same listing text from the honest seller and a ring member: the honest one ranks first...
            await Client.Listings.PublishListingAsync(ListingFactory.Sign(ring[3], ListingFactory.Listing("Handmade oak chair", "Solid oak, oiled finish")));
            await Client.Listings.PublishListingAsync(ListingFactory.Sign(honest, ListingFactory.Listing("Handmade oak chair", "Solid oak, oiled finish")));
            var ranked = await Eventually.ReturnsAsync(
                () => Client.Listings.SearchAsync(new SearchRequest { Text = "oak chair" }).ResponseAsync,
                r => r.Hits.Count == 2 && r.Hits[0].Record.Seller == honest.Id.ToString(),
                Deadline,
                "the honest seller's listing to rank above the ring's");
            Assert.Equal(ring[3].Id.ToString(), ranked.Hits[1].Record.Seller);
            // The texts are the same, so text relevance ties: the order comes from trust, not from chance.
            Assert.True(ranked.Hits[0].Score > ranked.Hits[1].Score * 1.1, $"scores {ranked.Hits[0].Score} and {ranked.Hits[1].Score}: trust did not weigh");

            // ...and a minimum reputation leaves the ring out altogether.
            var trusted = await Client.Listings.SearchAsync(new SearchRequest { Text = "oak chair", MinReputation = 1 });
            Assert.Equal(honest.Id.ToString(), Assert.Single(trusted.Hits).Record.Seller);
            var refused = await Assert.ThrowsAsync<RpcException>(() => Client.Listings.SearchAsync(new SearchRequest { Text = "oak chair", MinReputation = 101 }).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        }
        finally
        {
            buyers.ForEach(b => b.Dispose());
            ring.ForEach(r => r.Dispose());
        }
    }

    private async Task<RpcException> Refused(SignedEnvelope review) =>
        await Assert.ThrowsAsync<RpcException>(() => Client.Reputation.SubmitReviewAsync(review).ResponseAsync);
}
