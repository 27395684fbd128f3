using System.Globalization;
using System.Text.RegularExpressions;
using Hybrid.Index.Listings;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Storage;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

public sealed class SearchDurabilityTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    // Bulk publishing from one test process is far above what one real peer sends.
    private static readonly string[] BulkLimits = ["--Supernode:RequestsPerSecond=100000", "--Supernode:RequestBurst=100000"];
    private static readonly string[] Queries = ["bike ", "guitar", "\"road bike\"", "lamp used ", string.Empty];

    private static async Task<List<Listing>> PublishRealisticAsync(Protocol.Api.SupernodeClients client, int count, int seed)
    {
        using var seller = PeerIdentity.Generate();
        var listings = ListingFactory.Realistic(seed).Take(count).ToList();
        await Task.WhenAll(listings.Select(l => client.Listings.PublishListingAsync(ListingFactory.Sign(seller, l)).ResponseAsync));
        return listings;
    }

    private static async Task<List<List<string>>> AnswersAsync(Protocol.Api.SupernodeClients client)
    {
        var answers = new List<List<string>>();
        foreach (var text in Queries)
        {
            var response = await client.Listings.SearchAsync(new SearchRequest { Text = text, Limit = 50 });
            answers.Add([.. response.Hits.Select(h => h.Record.Listing.ListingId), $"total={response.TotalHits}"]);
        }

        foreach (var sort in new[] { SearchSort.PriceAscending, SearchSort.Newest })
        {
            var response = await client.Listings.SearchAsync(new SearchRequest { Limit = 50, Sort = sort, Currency = "EUR" });
            answers.Add([.. response.Hits.Select(h => h.Record.Listing.ListingId), $"total={response.TotalHits}"]);
        }

        return answers;
    }

    [Fact]
    public async Task AnEmbeddedSupernodeKilledHardAnswersTheSameQueriesAfterRestart()
    {
        using var temp = new TempDir();
        var dataDir = temp.Sub("data");
        List<List<string>> before;
        await using (var first = await SupernodeProcess.StartAsync(dataDir, BulkLimits))
        {
            await PublishRealisticAsync(first.Client, 300, seed: 7);
            before = await AnswersAsync(first.Client);
            first.KillHard();
        }

        await using var second = await SupernodeProcess.StartAsync(dataDir, BulkLimits);
        var after = await AnswersAsync(second.Client);

        Assert.Equal(before, after);
        Assert.Contains(before, a => a.Count > 2);
    }

    [Fact]
    public async Task AShardIndexKeptOnDiskIsBroughtInLineWithTheStoreAtRestart()
    {
        using var temp = new TempDir();
        var dataDir = temp.Sub("data");
        List<Listing> listings;
        List<List<string>> before;
        string[] onDisk = [.. BulkLimits, "--Supernode:SearchIndexOnDisk=true"];
        await using (var first = await SupernodeProcess.StartAsync(dataDir, onDisk))
        {
            listings = await PublishRealisticAsync(first.Client, 300, seed: 5);
            before = await AnswersAsync(first.Client);
            // A clean stop commits each shard's index to disk.
            first.Terminate();
            await first.WaitForExitAsync(Deadline);
        }

        // While the supernode is down the store changes under its index: a listing is taken down.
        var gone = listings[0];
        await using (var database = new SqliteDatabase(Path.Combine(dataDir, "index.db")))
        {
            var store = new SqliteListingStore(database);
            var shard = ListingShards.Of(gone.ListingId, 2);
            var stored = await store.GetAsync(shard, gone.ListingId) ?? throw new InvalidOperationException("the published listing is not in the store");
            await store.SaveAsync(shard, stored with { Version = stored.Version + 1, Withdrawn = true }, await store.ClaimAsync(shard));
        }

        await using var second = await SupernodeProcess.StartAsync(dataDir, [.. onDisk, "--Logging:LogLevel:Hybrid.Index.Search.SearchShardGrain=Information"]);

        // Searches answer from the store's state: the withdrawn listing is gone, the rest is as before
        // (a query matches at most one listing fewer; sorted pages only close up).
        var after = await AnswersAsync(second.Client);
        Assert.Equal(before.Count, after.Count);
        for (var i = 0; i < before.Count; i++)
        {
            var matchedGone = before[i].Contains(gone.ListingId);
            Assert.DoesNotContain(gone.ListingId, after[i]);
            Assert.InRange(Total(after[i]), Total(before[i]) - 1, Total(before[i]) - (matchedGone ? 1 : 0));
            if (i >= Queries.Length)
            {
                var closedUp = before[i].Where(id => id != gone.ListingId && !id.StartsWith("total=", StringComparison.Ordinal)).ToList();
                Assert.Equal(closedUp, after[i].Take(closedUp.Count));
            }
        }

        Assert.Equal(299, (await second.Client.Listings.SearchAsync(new SearchRequest { Limit = 1 })).TotalHits);
        Assert.DoesNotContain(gone.ListingId, (await second.Client.Listings.SearchAsync(new SearchRequest { Text = gone.Title, Limit = 100 })).Hits.Select(h => h.Record.Listing.ListingId));
        // Only that listing was touched (taken out); the other 299 came from the index on disk as they were.
        var indexedAgain = Regex.Matches(second.Output, @"(\d+) of them indexed again or taken out").Sum(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        Assert.Equal(1, indexedAgain);
    }

    [Fact]
    public async Task AListingPublishedThroughOneSupernodeIsFoundThroughAnotherAndSurvivesAKilledShardHost()
    {
        await using var cluster = await TestCluster.StartAsync(3, [.. BulkLimits, "--Supernode:SearchShards=8"]);
        var (sn1, sn2, sn3) = (cluster.Nodes[0], cluster.Nodes[1], cluster.Nodes[2]);
        var listings = await PublishRealisticAsync(sn1.Client, 200, seed: 11);
        var probe = listings[0];

        var found = await sn3.Client.Listings.SearchAsync(new SearchRequest { Text = probe.Title, Limit = 100 });
        Assert.Contains(probe.ListingId, found.Hits.Select(h => h.Record.Listing.ListingId));
        var everything = await sn3.Client.Listings.SearchAsync(new SearchRequest { Limit = 1 });
        Assert.Equal(200, everything.TotalHits);
        var before = await AnswersAsync(sn2.Client);

        // With 8 shards spread over 3 silos, the first supernode hosts some of them; kill it.
        sn1.KillHard();

        var recovered = await Eventually.ReturnsAsync(
            () => AnswersAsync(sn2.Client),
            answers => answers.SequenceEqual(before, new ListComparer()),
            Deadline,
            "search through the survivors to answer as before the kill");
        Assert.Equal(before, recovered);
        Assert.Equal(200, (await sn3.Client.Listings.SearchAsync(new SearchRequest { Limit = 1 })).TotalHits);
        var record = await sn3.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = probe.ListingId });
        Assert.Equal(ListingState.Active, record.State);
        Assert.Equal(ListingRules.Format(probe.Price), ListingRules.Format(record.Listing.Price));
    }

    private static long Total(List<string> answer) => long.Parse(answer[^1]["total=".Length..], CultureInfo.InvariantCulture);

    private sealed class ListComparer : IEqualityComparer<List<string>>
    {
        public bool Equals(List<string>? x, List<string>? y) => x is not null && y is not null && x.SequenceEqual(y);

        public int GetHashCode(List<string> obj) => obj.Count;
    }
}
