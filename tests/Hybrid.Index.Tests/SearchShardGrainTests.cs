using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Identity;
using Hybrid.Testing;
using Orleans.Core.Internal;

using static Hybrid.Index.Tests.ShardListings;

namespace Hybrid.Index.Tests;

/// <summary>The search index is derived from the stored listings: what a shard acknowledged is found after it moves, and a failed write is neither acknowledged nor found.</summary>
public sealed class SearchShardGrainTests(GrainHost host) : IClassFixture<GrainHost>
{
    [Fact]
    public async Task AShardRebuiltFromItsStoreFindsWhatItAcknowledgedAndNothingElse()
    {
        using var seller = PeerIdentity.Generate();
        var shard = host.Grains.GetGrain<ISearchShardGrain>(7);
        var kept = ListingFactory.Listing("Walnut chopping board");
        var failed = ListingFactory.Listing("Walnut serving tray");
        Assert.True((await shard.Publish(Stored(seller, kept))).Succeeded);
        FaultyStores.FailNextWrites("listings");
        await Assert.ThrowsAnyAsync<Exception>(() => shard.Publish(Stored(seller, failed)));

        await shard.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        var hits = await shard.Search(new SearchQuery("walnut", null, null, null, null, null, null, null, null, SearchOrder.Relevance), 10);

        Assert.Equal(kept.ListingId, Assert.Single(hits.Hits).ListingId);
        Assert.Null(await shard.Find(failed.ListingId));
        Assert.Equal(1, await shard.Count());
    }

    [Fact]
    public async Task AWithdrawalThatLandedThoughItsAnswerWasLostIsNotUndoneByAPublishOfTheSameVersion()
    {
        // The chaos run's case: a withdrawal at version 2 is stored, but the shard hears only an
        // error, so the seller (told it failed) publishes a new price at version 2. The store keeps
        // the withdrawal; the shard must not acknowledge the new price as stored.
        using var seller = PeerIdentity.Generate();
        var shard = host.Grains.GetGrain<ISearchShardGrain>(8);
        var listing = ListingFactory.Listing("Teak garden bench", price: 90m);
        Assert.True((await shard.Publish(Stored(seller, listing))).Succeeded);
        FaultyStores.LoseNextAnswers("listings");
        await Assert.ThrowsAnyAsync<Exception>(() => shard.Withdraw(listing.ListingId, seller.Id.ToString(), 2, [1, 2, 3]));

        var cheaper = listing.Clone();
        cheaper.Price = Protocol.Listings.ListingRules.ParseMoney("70", "EUR");
        var answer = await shard.Publish(Stored(seller, cheaper, version: 2));

        Assert.Equal((ListingOutcome.Replayed, 2ul), (answer.Outcome, answer.Version));
        var stored = await shard.Find(listing.ListingId);
        Assert.Equal((2ul, true), (stored!.Version, stored.Withdrawn));
        Assert.Empty((await shard.Search(Query("teak"), 10)).Hits);
        // The shard's view is the store's from then on: a newer version is taken.
        Assert.Equal(ListingOutcome.Applied, (await shard.Publish(Stored(seller, cheaper, version: 3))).Outcome);
        Assert.Equal(listing.ListingId, Assert.Single((await shard.Search(Query("teak"), 10)).Hits).ListingId);
    }

    [Fact]
    public async Task APublishThatLandedThoughItsAnswerWasLostIsUnchangedWhenRetriedAndRefusedWhenItsVersionIsReused()
    {
        using var seller = PeerIdentity.Generate();
        var shard = host.Grains.GetGrain<ISearchShardGrain>(9);
        var listing = ListingFactory.Listing("Brass ship lantern", price: 40m);
        var first = Stored(seller, listing);
        FaultyStores.LoseNextAnswers("listings");
        await Assert.ThrowsAnyAsync<Exception>(() => shard.Publish(first));

        // Sent again as it was: already stored, so the retry succeeds without a change.
        var retried = await shard.Publish(first);
        Assert.Equal((ListingOutcome.Unchanged, 1ul), (retried.Outcome, retried.Version));
        Assert.Equal(listing.ListingId, Assert.Single((await shard.Search(Query("lantern"), 10)).Hits).ListingId);

        // Another body under the same version is not acknowledged: the store holds the first.
        var other = listing.Clone();
        other.Price = Protocol.Listings.ListingRules.ParseMoney("45", "EUR");
        var landed = Stored(seller, other, version: 2);
        FaultyStores.LoseNextAnswers("listings");
        await Assert.ThrowsAnyAsync<Exception>(() => shard.Publish(landed));
        var reused = await shard.Publish(Stored(seller, listing, version: 2));
        Assert.Equal((ListingOutcome.Replayed, 2ul), (reused.Outcome, reused.Version));
        Assert.Equal(landed.Envelope, (await shard.Find(listing.ListingId))!.Envelope);
    }

    [Fact]
    public async Task AnActivationWhoseShardWasTakenElsewhereAcknowledgesNoWriteAndTheNewOwnerHoldsEveryAcknowledgedOne()
    {
        // The chaos run's case: a supernode frozen past failure detection is declared dead, and its
        // shard activates on another supernode, which claims the shard and rebuilds from the store.
        // When the frozen one runs again, a write it still had in flight must not be acknowledged:
        // the activation now answering for the shard would never learn of it.
        using var seller = PeerIdentity.Generate();
        const int number = 10;
        var shard = host.Grains.GetGrain<ISearchShardGrain>(number);
        var before = ListingFactory.Listing("Copper jam pan");
        Assert.True((await shard.Publish(Stored(seller, before))).Succeeded);

        var claim = await FaultyStores.Listings.ClaimAsync(number);
        var rebuiltFrom = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var held in FaultyStores.Listings.ReadShardAsync(number, CancellationToken.None))
        {
            rebuiltFrom.Add(held.ListingId);
        }

        var late = ListingFactory.Listing("Copper milk pan");
        var refused = await Assert.ThrowsAsync<Orleans.Storage.InconsistentStateException>(() => shard.Publish(Stored(seller, late)));
        Assert.Contains("moved to another supernode", refused.Message, StringComparison.Ordinal);
        Assert.Contains(before.ListingId, rebuiltFrom);
        Assert.Null(await FaultyStores.Listings.GetAsync(number, late.ListingId));

        // The stale activation has gone: the next call reaches a fresh one, which claims the shard
        // anew (past the other claim), rebuilds, and takes the write the client sends again.
        Assert.Equal(ListingOutcome.Applied, (await shard.Publish(Stored(seller, late))).Outcome);
        Assert.True(await FaultyStores.Listings.ClaimOfAsync(number) > claim);
        Assert.Equal(2, (await shard.Search(Query("copper"), 10)).Hits.Length);
    }

    [Fact]
    public async Task AShardThatOnlyAnswersSearchesGoesOnceItsShardIsClaimedElsewhere()
    {
        // A stale activation that takes no write never hears the store refuse it: its sweep checks the claim.
        using var seller = PeerIdentity.Generate();
        const int number = 11;
        var shard = host.Grains.GetGrain<ISearchShardGrain>(number);
        Assert.True((await shard.Publish(Stored(seller, ListingFactory.Listing("Pewter tankard")))).Succeeded);
        var before = await shard.Generation();

        var claim = await FaultyStores.Listings.ClaimAsync(number);
        await FaultyStores.Listings.SaveAsync(number, Stored(seller, ListingFactory.Listing("Pewter candlestick")), claim);

        // Polled through searches only: the stale activation answers one listing until it goes, and
        // the fresh one (a new generation) rebuilds from the store and finds both.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while ((await shard.Generation()).Activation == before.Activation)
        {
            Assert.True(DateTime.UtcNow < deadline, "the shard activation whose claim was superseded was still answering after 20 s of sweeps every 0.5 s");
            Assert.Single((await shard.Search(Query("pewter"), 10)).Hits);
            await Task.Delay(100);
        }

        Assert.Equal(2, (await shard.Search(Query("pewter"), 10)).Hits.Length);
        Assert.True(await FaultyStores.Listings.ClaimOfAsync(number) > claim);
    }
}
