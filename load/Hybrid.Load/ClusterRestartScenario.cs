using System.Diagnostics;
using System.Globalization;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Storage;
using Hybrid.Testing;
using StackExchange.Redis;

namespace Hybrid.Load;

/// <summary>
/// A three-supernode cluster holding N listings in Redis: start to search-ready, the answers to a
/// fixed set of queries, then kill -9 every supernode, start them again, and compare the answers
/// and the time until search is ready again. Baseline: the same cluster empty, start to ready.
/// </summary>
internal static class ClusterRestartScenario
{
    public static async Task<int> RunAsync(int listings, int shards, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("cluster-restart", "3 empty supernodes: start to ready");
        var corpus = Corpus.Create(listings);
        var queries = corpus.Queries(50);
        await using var redis = await RedisServer.StartAsync();
        var args = new[] { $"--Supernode:SearchShards={shards}", "--Supernode:RequestsPerSecond=1000000", "--Supernode:RequestBurst=1000000" };

        var empty = report.Series("3 empty supernodes: start to ready");
        await using (var blank = await RedisServer.StartAsync())
        {
            var clock = Stopwatch.StartNew();
            await using var cluster = await TestCluster.StartAsync(3, blank, args);
            Report.Record(empty, clock.Elapsed);
        }

        var clockSeed = Stopwatch.StartNew();
        using (var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            await corpus.SeedAsync(new RedisListingStore(connection, "hybrid"), shards);
        }

        report.Fact("listings written to Redis", $"{listings:N0} in {clockSeed.Elapsed.TotalSeconds:0.0} s");

        var first = report.Series($"3 supernodes, {listings:N0} listings: start to search-ready");
        var restart = report.Series($"after kill -9 of all 3: restart to search-ready");
        List<string> before;
        var clock2 = Stopwatch.StartNew();
        var running = await TestCluster.StartAsync(3, redis, args, TimeSpan.FromMinutes(10));
        try
        {
            Report.Record(first, clock2.Elapsed);
            before = await AnswersAsync(running.Nodes[0].Client, queries, cancellationToken);
            foreach (var node in running.Nodes)
            {
                node.KillHard();
            }
        }
        finally
        {
            await running.DisposeNodesAsync();
        }

        clock2.Restart();
        await using var again = await TestCluster.StartAsync(3, redis, args, TimeSpan.FromMinutes(10));
        Report.Record(restart, clock2.Elapsed);
        var after = await AnswersAsync(again.Nodes[2].Client, queries, cancellationToken);
        var same = before.SequenceEqual(after);
        report.Fact("same answers to the 50 queries after kill -9 of every supernode", same ? "yes" : "NO");
        report.Fact("hits in those answers", before.Count.ToString("N0", CultureInfo.InvariantCulture));
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["listings"] = listings.ToString(CultureInfo.InvariantCulture),
            ["shards"] = shards.ToString(CultureInfo.InvariantCulture),
            ["supernodes"] = "3",
        });
        return same ? 0 : 1;
    }

    private static async Task<List<string>> AnswersAsync(Protocol.Api.SupernodeClients client, List<SearchRequest> queries, CancellationToken cancellationToken)
    {
        var answers = new List<string>();
        foreach (var query in queries)
        {
            var response = await client.Listings.SearchAsync(query, cancellationToken: cancellationToken);
            answers.Add($"total={response.TotalHits}");
            answers.AddRange(response.Hits.Select(h => h.Record.Listing.ListingId));
        }

        return answers;
    }
}
