using System.Globalization;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>After real traffic, the Prometheus series an operator watches have moved.</summary>
public sealed class MetricsTests : IDisposable
{
    private static readonly HttpClient Http = new();
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task SessionsLookupsPublishesSearchesMailAndGrainActivationsShowInMetrics()
    {
        await using var node = await SupernodeProcess.StartAsync(_temp.Sub("sn"));
        var before = await ScrapeAsync(node);
        Assert.Equal(0, Value(before, "hybrid_sessions_opened_total"));

        using var seller = PeerIdentity.Generate();
        using var buyer = PeerIdentity.Generate();
        using var session = await RawSession.OpenAsync(node.Client);
        await session.SendHelloAsync(RawSession.Proof(seller, session.Challenge), RawSession.Profile(seller, "Sam", 1));
        var token = new Metadata { { Protocol.Api.SupernodeClients.SessionHeader, (await session.ReadAsync()).Welcome.SessionToken } };
        // Mail goes only to identities the network knows: the buyer has a session too (and does not take its mail).
        using var buyerSession = await RawSession.OpenAsync(node.Client);
        await buyerSession.SendHelloAsync(RawSession.Proof(buyer, buyerSession.Challenge), RawSession.Profile(buyer, "Bo", 1));
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await buyerSession.ReadAsync()).KindCase);
        await node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = seller.Id.ToString() });
        await node.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, ListingFactory.Listing("Brass desk lamp")));
        await node.Client.Listings.SearchAsync(new SearchRequest { Text = "lamp" });
        await node.Client.Listings.SearchAsync(new SearchRequest { Text = "desk" });
        await node.Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = buyer.Id.ToString(), Item = SealedBoxes.Seal("hello"u8, buyer.PublicKey) }, token);

        var after = await ScrapeAsync(node);
        Assert.Equal(2, Value(after, "hybrid_sessions_opened_total"));
        Assert.Equal(2, Value(after, "hybrid_sessions_active"));
        Assert.Equal(1, Value(after, "hybrid_lookups_total"));
        // Sampled from the start, every 50 ms: what an operator reads when the cluster suspected a busy supernode.
        Assert.True(Value(after, "hybrid_scheduling_delay_seconds_count") > 0, "no scheduling delay sampled");
        Assert.Equal(1, Value(after, "hybrid_listings_published_total{outcome=\"applied\"}"));
        Assert.Equal(2, Value(after, "hybrid_search_duration_seconds_count"));
        Assert.True(Value(after, "hybrid_search_duration_seconds_sum") > 0);
        // The load runner reads the search histogram's buckets to place the supernode's own share of a
        // search's latency: both searches are counted, and each quantile falls in a finite bucket.
        var searches = await node.HistogramAsync("hybrid_search_duration_seconds");
        Assert.Equal(2, searches.Buckets[^1].Count);
        Assert.True(searches.AtMost(0.99) is > 0 and < double.PositiveInfinity, $"p99 at most {searches.AtMost(0.99)} s");
        Assert.All((searches - searches).Buckets, b => Assert.Equal(0, b.Count));
        // Where a search's time goes, stage by stage, to a tenth of a millisecond: each search read one
        // page and called each of the two shards once, and each shard searched Lucene once.
        var page = await node.HistogramAsync("hybrid_search_stage_seconds", "stage=\"page\"");
        Assert.Equal(2, page.Count);
        Assert.Equal(0.0001, page.Buckets[0].Le);
        foreach (var stage in new[] { "shard.call", "shard.queued", "shard.search", "shard.resumed" })
        {
            var times = await node.HistogramAsync("hybrid_search_stage_seconds", $"stage=\"{stage}\"");
            Assert.True(times.Count == 4, $"{stage}: {times.Count} observations, not one per shard and search");
        }

        var calls = await node.HistogramAsync("hybrid_search_stage_seconds", "stage=\"shard.call\"");
        var searched = await node.HistogramAsync("hybrid_search_stage_seconds", "stage=\"shard.search\"");
        Assert.True(calls.Mean >= searched.Mean && searched.Mean > 0, $"a shard call ({calls.Mean} s) takes at least its Lucene search ({searched.Mean} s)");
        Assert.Equal(1, Value(after, "hybrid_mail_deposited_total"));
        Assert.Equal(1, Value(after, "hybrid_mailbox_items"));
        // One listing, searched since it was published: one shard's index holds it in one segment, the other is empty.
        Assert.Equal(1, Value(after, "hybrid_search_index_segments"));
        Assert.True(Value(after, "microsoft_orleans_orleans_catalog_activations{grain_type=\"peer\"}") >= 1);
        Assert.True(Value(after, "microsoft_orleans_orleans_catalog_activations{grain_type=\"mailbox\"}") >= 1);
        Assert.Contains("hybrid_relay_bytes_total", after, StringComparison.Ordinal);
        // The load runner reads what the sessions and listings hold as the heap's size less the free
        // space between its objects, both as the last collection left them.
        Assert.Contains("system_runtime_dotnet_gc_last_collection_heap_fragmentation_size{", after, StringComparison.Ordinal);
        var heap = await node.ManagedHeapAsync();
        Assert.True(heap.Live > 0 && heap.Fragmentation >= 0, $"live {heap.Live} B, free {heap.Fragmentation} B");
        // Each collection's own pause, by kind (the runtime's metrics give only their sum): the full,
        // blocking collection the load runner induces to read the live heap is counted as one.
        var fullBefore = (await node.HistogramAsync("hybrid_gc_pause_seconds", "kind=\"full\"")).Count;
        await node.CollectGarbageAsync();
        await Eventually.TrueAsync(
            async () => (await node.HistogramAsync("hybrid_gc_pause_seconds", "kind=\"full\"")).Count > fullBefore,
            TimeSpan.FromSeconds(10),
            "the supernode to count the induced full collection's pause in hybrid_gc_pause_seconds");
    }

    private static async Task<string> ScrapeAsync(SupernodeProcess node) =>
        await Eventually.ReturnsAsync(
            () => Http.GetStringAsync(new Uri($"{node.OpsUrl}/metrics")),
            text => text.Contains("hybrid_sessions_opened_total", StringComparison.Ordinal),
            TimeSpan.FromSeconds(10),
            "the metrics page");

    /// <summary>The value of one series (name with labels, exactly as exposed), or fails naming it.</summary>
    private static double Value(string metrics, string series)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no series {series} in /metrics");
        return double.Parse(line[(series.Length + 1)..].Trim(), CultureInfo.InvariantCulture);
    }
}
