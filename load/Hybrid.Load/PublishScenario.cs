using System.Diagnostics;
using System.Globalization;
using Grpc.Net.Client;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Publish throughput through one embedded supernode, signature verification and durable
/// storage included. Baseline: verifying the same envelopes in this process, on every core.
/// </summary>
internal static class PublishScenario
{
    public static async Task<int> RunAsync(int listings, int workers, int shards, string reportFolder, CancellationToken cancellationToken)
    {
        var report = new Report("publish", "verify one envelope in-process");
        var corpus = Corpus.Create(listings);

        var verify = report.Series("verify one envelope in-process");
        var clock = Stopwatch.StartNew();
        var now = DateTimeOffset.UtcNow;
        Parallel.ForEach(corpus.Items, item =>
        {
            var started = Stopwatch.GetTimestamp();
            SignedEnvelopes.Verify(item.Envelope, EnvelopeKinds.Listing, now);
            Report.Record(verify, Stopwatch.GetElapsedTime(started));
        });
        var verifyRate = listings / clock.Elapsed.TotalSeconds;

        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"), $"--Supernode:SearchShards={shards}", "--Supernode:RequestsPerSecond=1000000", "--Supernode:RequestBurst=1000000");
        using var channel = GrpcChannel.ForAddress(node.GrpcUrl, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var client = new Protocol.Api.SupernodeClients(channel);
        var next = -1;
        var published = report.Series($"publish through the supernode, {workers} in flight");
        clock.Restart();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < listings)
            {
                var started = Stopwatch.GetTimestamp();
                await client.Listings.PublishListingAsync(corpus.Items[i].Envelope, cancellationToken: cancellationToken);
                Report.Record(published, Stopwatch.GetElapsedTime(started));
            }
        })));
        var publishRate = listings / clock.Elapsed.TotalSeconds;
        var total = (await client.Listings.SearchAsync(new SearchRequest { Limit = 1 }, cancellationToken: cancellationToken)).TotalHits;

        report.Fact("ECDSA P-256 verify, all cores, in-process (baseline)", $"{verifyRate:N0} envelopes/s");
        report.Fact("publish through the supernode (verify, rules, durable write, index)", $"{publishRate:N0} listings/s");
        report.Fact("publish / verify throughput", $"{publishRate / verifyRate:0.00}");
        report.Fact("listings searchable afterwards", total.ToString("N0", CultureInfo.InvariantCulture));
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["listings"] = listings.ToString(CultureInfo.InvariantCulture),
            ["workers"] = workers.ToString(CultureInfo.InvariantCulture),
            ["shards"] = shards.ToString(CultureInfo.InvariantCulture),
            ["mode"] = "embedded (SQLite WAL, synchronous=FULL, group commit)",
        });
        return 0;
    }
}
