using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Independent clusters (here: embedded supernodes, each with its own store and federation key)
/// form one marketplace: each pulls from its peer clusters the signed listings it lacks, checks
/// each as if a seller had sent it, and refuses, throttles and drops a cluster that lies.
/// </summary>
public sealed class FederationTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private const string Interval = "--Supernode:Federation:Interval=00:00:00.300";

    /// <summary>A cluster of the lab: its port, data and key are chosen before any cluster starts, so peers can name each other.</summary>
    private sealed class Cluster(string name, string dataDir, int port, PeerIdentity key)
    {
        public string Name { get; } = name;

        public string DataDir { get; } = dataDir;

        public int Port { get; } = port;

        public string Url => $"http://127.0.0.1:{Port}";

        public PeerIdentity Key { get; } = key;

        public SupernodeProcess? Node { get; set; }

        public SupernodeProcess Running => Node ?? throw new InvalidOperationException($"cluster {Name} is not running");

        public static Cluster Create(TempDir temp, string name)
        {
            var cluster = new Cluster(name, temp.Sub(name), Ports.Free(), PeerIdentity.Generate());
            Directory.CreateDirectory(cluster.DataDir);
            File.WriteAllText(Path.Combine(cluster.DataDir, "federation-key.pem"), cluster.Key.ExportPrivateKeyPem());
            return cluster;
        }

        public SupernodeProcess Launch(IEnumerable<Cluster> peers, params string[] extra) =>
            Node = SupernodeProcess.Launch(Port, DataDir, [Interval, $"--Supernode:Federation:Peers={string.Join(',', peers.Select(p => p.Url))}", .. extra]);
    }

    private static async Task StartAllAsync(params (Cluster Cluster, Cluster[] Peers)[] clusters)
    {
        foreach (var (cluster, peers) in clusters)
        {
            cluster.Launch(peers);
        }

        await Task.WhenAll(clusters.Select(c => c.Cluster.Running.WaitReadyAsync(failWhenExited: true)));
    }

    private static async Task StopAllAsync(params Cluster[] clusters)
    {
        foreach (var cluster in clusters)
        {
            if (cluster.Node is { } node)
            {
                await node.DisposeAsync();
            }

            cluster.Key.Dispose();
        }
    }

    private static async Task<Listing> PublishAsync(Cluster cluster, PeerIdentity seller, string title, ulong version = 1, Listing? listing = null)
    {
        listing ??= ListingFactory.Listing(title);
        listing.Title = title;
        await cluster.Running.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, listing, version));
        return listing;
    }

    private static async Task<List<string>> TitlesAsync(Cluster cluster, string text)
    {
        var response = await cluster.Running.Client.Listings.SearchAsync(new SearchRequest { Text = text, Limit = 100 });
        return [.. response.Hits.Select(h => h.Record.Listing.Title)];
    }

    private static Task FoundAsync(Cluster cluster, string text, string title) =>
        Eventually.TrueAsync(async () => (await TitlesAsync(cluster, text)).Contains(title), Deadline, $"'{title}' to be found by a search for '{text}' in cluster {cluster.Name}");

    [Fact]
    public async Task FederationCarriesAListingAndItsNewVersionToAClusterThatIsNotAPeerOfItsOwn()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        try
        {
            // A and C know only B.
            await StartAllAsync((a, [b]), (b, [a, c]), (c, [b]));
            using var seller = PeerIdentity.Generate();
            var listing = await PublishAsync(a, seller, "Teak garden bench");

            await FoundAsync(c, "teak bench", "Teak garden bench");
            // C serves the listing as its seller signed it, though C never heard from the seller.
            var record = await c.Running.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId });
            var verified = SignedEnvelopes.Verify(record.Envelope, EnvelopeKinds.Listing, DateTimeOffset.UtcNow, seller.Id);
            Assert.Equal("Teak garden bench", verified.Body(Listing.Parser).Title);
            // Searches say which cluster the listing was published to, wherever they are answered.
            Assert.Equal(a.Key.Id.ToString(), record.OriginCluster);
            var hit = (await c.Running.Client.Listings.SearchAsync(new SearchRequest { Text = "teak bench" })).Hits.Single();
            Assert.Equal(a.Key.Id.ToString(), hit.Record.OriginCluster);
            Assert.Equal(a.Key.Id.ToString(), (await a.Running.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId })).OriginCluster);

            await PublishAsync(a, seller, "Teak garden bench, newly oiled", version: 2, listing: listing);
            await FoundAsync(c, "oiled", "Teak garden bench, newly oiled");
            Assert.DoesNotContain("Teak garden bench", await TitlesAsync(c, "teak bench"));
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    [Fact]
    public async Task FederationCarriesASellersWithdrawalToClustersThatTookTheListingAndToThoseThatNeverSawIt()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        try
        {
            await StartAllAsync((a, [b]), (b, [a]));
            using var seller = PeerIdentity.Generate();
            var listing = await PublishAsync(a, seller, "Oak rocking chair");
            await FoundAsync(b, "rocking chair", "Oak rocking chair");

            await a.Running.Client.Listings.WithdrawListingAsync(ListingFactory.Withdrawal(seller, listing.ListingId, 2));

            await Eventually.TrueAsync(async () => (await TitlesAsync(b, "rocking chair")).Count == 0, Deadline, "the withdrawn listing to leave cluster b's search");
            var record = await b.Running.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId });
            Assert.Equal(ListingState.Withdrawn, record.State);

            // A cluster that joins later takes the withdrawal too: nothing to show, and no older version can come back.
            c.Launch([b]);
            await c.Running.WaitReadyAsync(failWhenExited: true);
            await Eventually.TrueAsync(
                async () => (await c.Running.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId })).State == ListingState.Withdrawn,
                Deadline,
                "cluster c to hold the listing as withdrawn");
            var republished = await Assert.ThrowsAsync<RpcException>(() => c.Running.Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, listing)).ResponseAsync);
            Assert.Equal(StatusCode.AlreadyExists, republished.StatusCode);
            Assert.Empty(await TitlesAsync(c, "rocking chair"));
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    [Fact]
    public async Task FederationCarriesAReviewItsAmendmentAndItsReplyIntoAnotherClustersReputation()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        try
        {
            // A and C know only B: the review written in C reaches A through B.
            await StartAllAsync((a, [b]), (b, [a, c]), (c, [b]));
            using var buyer = PeerIdentity.Generate();
            using var seller = PeerIdentity.Generate();
            var receipt = Trades.Complete(buyer, seller);
            var submitted = await c.Running.Client.Reputation.SubmitReviewAsync(Trades.Review(buyer, seller.Id, receipt, 2, "Slow to ship"));

            async Task<ReviewRecord?> ReviewInA()
            {
                var page = await a.Running.Client.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = seller.Id.ToString() });
                return page.Reviews.SingleOrDefault(r => r.ReviewId == submitted.ReviewId);
            }

            await Eventually.TrueAsync(async () => await ReviewInA() is not null, Deadline, "the review written in cluster c to be listed in cluster a");
            var reputation = await a.Running.Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = seller.Id.ToString() });
            Assert.Equal(1, reputation.Count);
            Assert.Equal(2, reputation.Average, 3);
            // A serves the review as the buyer signed it, receipt and all.
            var listed = (await ReviewInA())!;
            Assert.Equal(Reviews.Verify(listed.Envelope, DateTimeOffset.UtcNow).ReviewId, submitted.ReviewId);

            // The buyer amends it in C; the seller replies in A; both reach the other side.
            await c.Running.Client.Reputation.SubmitReviewAsync(Trades.Review(buyer, seller.Id, receipt, 4, "Slow, but well packed", version: 2));
            await a.Running.Client.Reputation.ReplyToReviewAsync(Reviews.SignReply(seller, submitted.ReviewId, "A strike held the parcel up; sorry.", 1, DateTimeOffset.UtcNow));
            await Eventually.TrueAsync(async () => await ReviewInA() is { Version: 2, Stars: 4 }, Deadline, "the amended review (version 2) to reach cluster a");
            await Eventually.TrueAsync(
                async () => (await c.Running.Client.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = seller.Id.ToString() })).Reviews.SingleOrDefault()?.ReplyText == "A strike held the parcel up; sorry.",
                Deadline,
                "the seller's reply written in cluster a to reach cluster c");
            Assert.Equal(4, (await a.Running.Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = seller.Id.ToString() })).Average, 3);
            Assert.Equal(0, await a.Running.MetricAsync("hybrid_federation_reviews_total{outcome=\"refused\"}"));
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    [Fact]
    public async Task APeerOfOneFederatedClusterIsLookedUpAndChattedWithFromAnother()
    {
        using var temp = new TempDir();
        var (a, b) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"));
        try
        {
            await StartAllAsync((a, [b]), (b, [a]));
            var (seller, buyer) = (await Infrastructure.Cli.InitAsync(temp, "seller", "Sam"), await Infrastructure.Cli.InitAsync(temp, "buyer", "Bea"));
            await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", a.Url, "--listen", "127.0.0.1:0");
            await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", b.Url, "--listen", "127.0.0.1:0");
            var sellerId = (await Infrastructure.Cli.Ok(seller.RunAsync("id"))).Stdout.Trim();

            // Cluster b never saw the seller: it asks its peer cluster, and says whose word it passes on.
            var info = await Eventually.ReturnsAsync(
                () => b.Running.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = sellerId }).ResponseAsync,
                i => i.Online,
                Deadline,
                "cluster b to find the seller online through cluster a");
            Assert.Equal(a.Key.Id.ToString(), info.HomeCluster);
            Assert.Equal("Sam", info.DisplayName);
            Assert.StartsWith(a.Url, info.SupernodeUrl, StringComparison.Ordinal);

            var sent = Infrastructure.Cli.Json(await Infrastructure.Cli.Ok(buyer.RunAsync("chat", "send", sellerId, "is the bench still for sale?", "--json")));
            Assert.Equal("direct", sent.GetProperty("status").GetString());
            await Eventually.ReturnsAsync(
                () => seller.RunAsync("chat", "read", "--json"),
                r => r.ExitCode == 0 && Infrastructure.Cli.Json(r).EnumerateArray().Any(m => m.GetProperty("text").GetString() == "is the bench still for sale?"),
                Deadline,
                "the seller on cluster a to read the buyer's message sent from cluster b");

            // A peer no cluster knows is still NOT_FOUND, with a readable reason.
            using var nobody = PeerIdentity.Generate();
            var missing = await Assert.ThrowsAsync<RpcException>(() => b.Running.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = nobody.Id.ToString() }).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        }
        finally
        {
            await StopAllAsync(a, b);
        }
    }

    /// <summary>Two clusters that listen for federation over mutual TLS and pull from each other, pinned; sessions time out fast.</summary>
    private static async Task StartListeningPairAsync(Cluster a, Cluster b)
    {
        var (aFederation, bFederation) = (Ports.Free(), Ports.Free());
        string[] fastSessions = ["--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:03"];
        a.Node = SupernodeProcess.Launch(a.Port, a.DataDir, [Interval, $"--Supernode:Federation:Listen=127.0.0.1:{aFederation}", $"--Supernode:Federation:Peers={b.Key.Id}@https://127.0.0.1:{bFederation}", .. fastSessions]);
        b.Node = SupernodeProcess.Launch(b.Port, b.DataDir, [Interval, $"--Supernode:Federation:Listen=127.0.0.1:{bFederation}", $"--Supernode:Federation:Peers={a.Key.Id}@https://127.0.0.1:{aFederation}", .. fastSessions]);
        await Task.WhenAll(a.Running.WaitReadyAsync(failWhenExited: true), b.Running.WaitReadyAsync(failWhenExited: true));
    }

    [Fact]
    public async Task APrivatePeerOfOneFederatedClusterIsReachedFromAnotherThroughBothClustersRelays()
    {
        using var temp = new TempDir();
        var (a, b) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"));
        try
        {
            await StartListeningPairAsync(a, b);
            var (seller, buyer) = (await Infrastructure.Cli.InitAsync(temp, "seller", "Sam"), await Infrastructure.Cli.InitAsync(temp, "buyer", "Bea"));
            // The seller advertises no address: only a relay reaches it.
            await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", a.Url, "--private");
            await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", b.Url, "--listen", "127.0.0.1:0");
            var sellerId = (await Infrastructure.Cli.Ok(seller.RunAsync("id"))).Stdout.Trim();
            var buyerId = (await Infrastructure.Cli.Ok(buyer.RunAsync("id"))).Stdout.Trim();
            await Eventually.ReturnsAsync(
                () => buyer.RunAsync("peer", "lookup", sellerId, "--json"),
                r => r.ExitCode == 0 && Infrastructure.Cli.Json(r).GetProperty("online").GetBoolean(),
                Deadline,
                "the seller (of cluster a) to show online to the buyer on cluster b");

            var sent = Infrastructure.Cli.Json(await Infrastructure.Cli.Ok(buyer.RunAsync("chat", "send", sellerId, "hello from the other cluster", "--json")));
            Assert.Equal("relayed", sent.GetProperty("status").GetString());
            await Eventually.ReturnsAsync(
                () => seller.RunAsync("chat", "read", "--json"),
                r => r.ExitCode == 0 && Infrastructure.Cli.Json(r).EnumerateArray().Any(m => m.GetProperty("text").GetString() == "hello from the other cluster"),
                Deadline,
                "the private seller on cluster a to read the relayed message");
            // The private side dials back through the relays too.
            Assert.Equal("relayed", Infrastructure.Cli.Json(await Infrastructure.Cli.Ok(seller.RunAsync("chat", "send", buyerId, "hello back", "--json"))).GetProperty("status").GetString());
            Assert.True(await b.Running.MetricAsync("hybrid_relay_links_total{outcome=\"federated\"}") >= 1);
        }
        finally
        {
            await StopAllAsync(a, b);
        }
    }

    [Fact]
    public async Task MailForAnOfflinePeerOfAnotherFederatedClusterIsForwardedToItsHomeAndReportedDelivered()
    {
        using var temp = new TempDir();
        var (a, b) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"));
        try
        {
            // Mail crosses only between clusters that know each other by key: both listen for federation over mutual TLS.
            await StartListeningPairAsync(a, b);
            var (sender, recipient) = (await Infrastructure.Cli.InitAsync(temp, "sender", "Sid"), await Infrastructure.Cli.InitAsync(temp, "recipient", "Ria"));
            var recipientId = (await Infrastructure.Cli.Ok(recipient.RunAsync("id"))).Stdout.Trim();
            await using (await DaemonProcess.StartAsync(recipient, "--supernode", a.Url, "--listen", "127.0.0.1:0"))
            {
                // Online once on cluster a, so a knows its key; then it goes away.
            }

            await using var senderDaemon = await DaemonProcess.StartAsync(sender, "--supernode", b.Url, "--listen", "127.0.0.1:0");
            await Eventually.ReturnsAsync(
                () => sender.RunAsync("peer", "lookup", recipientId, "--json"),
                r => r.ExitCode == 0 && !Infrastructure.Cli.Json(r).GetProperty("online").GetBoolean(),
                Deadline,
                "the recipient (of cluster a) to show offline to the sender on cluster b");
            var sent = Infrastructure.Cli.Json(await Infrastructure.Cli.Ok(sender.RunAsync("chat", "send", recipientId, "your parcel left today", "--json")));
            Assert.Equal("stored", sent.GetProperty("status").GetString());
            Assert.Equal(1, Infrastructure.Cli.Json(await Infrastructure.Cli.Ok(sender.RunAsync("status", "--json"))).GetProperty("mailboxPending").GetInt32());

            await using var back = await DaemonProcess.StartAsync(recipient, "--supernode", a.Url, "--listen", "127.0.0.1:0");
            await Eventually.ReturnsAsync(
                () => recipient.RunAsync("chat", "read", "--json"),
                r => r.ExitCode == 0 && Infrastructure.Cli.Json(r).EnumerateArray().Any(m => m.GetProperty("text").GetString() == "your parcel left today"),
                Deadline,
                "the recipient to take the message from its mailbox on cluster a");
            await Eventually.ReturnsAsync(
                () => sender.RunAsync("chat", "read", recipientId, "--json"),
                r => r.ExitCode == 0 && Infrastructure.Cli.Json(r).EnumerateArray().Single().GetProperty("status").GetString() == "delivered",
                Deadline,
                "the sender on cluster b to see the forwarded message as delivered");
        }
        finally
        {
            await StopAllAsync(a, b);
        }
    }

    [Fact]
    public async Task AFederatedClusterRestartedEmptyCatchesUpWithItsPeers()
    {
        using var temp = new TempDir();
        var (a, b) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"));
        try
        {
            await StartAllAsync((a, [b]), (b, [a]));
            using var seller = PeerIdentity.Generate();
            var titles = Enumerable.Range(0, 40).Select(i => $"Vinyl record number {i}").ToList();
            foreach (var title in titles)
            {
                await PublishAsync(a, seller, title);
            }

            await FoundAsync(b, "vinyl", titles[^1]);
            b.Running.KillHard();
            await b.Running.DisposeAsync();
            foreach (var file in Directory.GetFiles(b.DataDir).Where(f => !f.EndsWith("federation-key.pem", StringComparison.Ordinal)))
            {
                File.Delete(file);
            }

            b.Launch([a]);
            await b.Running.WaitReadyAsync(failWhenExited: true);
            await Eventually.TrueAsync(async () => (await TitlesAsync(b, "vinyl")).Count == titles.Count, Deadline, $"all {titles.Count} listings back in cluster b after it restarted empty");
        }
        finally
        {
            await StopAllAsync(a, b);
        }
    }

    [Fact]
    public async Task FederatedClustersCutApartConvergeWhenThePartitionHeals()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        try
        {
            // A and C reach each other only through B: with B down they are cut apart.
            await StartAllAsync((a, [b]), (c, [b]));
            using var seller = PeerIdentity.Generate();
            await PublishAsync(a, seller, "Brass desk lamp");
            await PublishAsync(c, seller, "Brass door knocker");

            b.Launch([a, c]);
            await b.Running.WaitReadyAsync(failWhenExited: true);

            await FoundAsync(a, "brass", "Brass door knocker");
            await FoundAsync(c, "brass", "Brass desk lamp");
            foreach (var cluster in new[] { a, b, c })
            {
                Assert.Equal(["Brass desk lamp", "Brass door knocker"], (await TitlesAsync(cluster, "brass")).Order(StringComparer.Ordinal));
            }
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    /// <summary>Starts C, and B pulling from C (so B's hello names C); a listing published in C is already in B.</summary>
    private static async Task StartIntroducerAsync(Cluster b, Cluster c, PeerIdentity seller, string text, string title)
    {
        c.Launch([]);
        b.Launch([c]);
        await Task.WhenAll(new[] { b, c }.Select(x => x.Running.WaitReadyAsync(failWhenExited: true)));
        await PublishAsync(c, seller, title);
        await FoundAsync(b, text, title);
    }

    [Fact]
    public async Task AFederatedClusterLearnsThePeersOfItsPeerAndPullsFromThemWhenThePeerIsGoneEvenAfterARestart()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        try
        {
            // A is configured with B only; B pulls from C, and names C in its hello. (Loopback and
            // plain http are allowed here; by default a learned peer must be https at a public address.)
            using var seller = PeerIdentity.Generate();
            await StartIntroducerAsync(b, c, seller, "doorknob", "Brass doorknob");
            a.Launch([b], "--Supernode:Federation:LearnPrivateAddresses=true");
            await a.Running.WaitReadyAsync(failWhenExited: true);
            await Eventually.TrueAsync(async () => await a.Running.MetricAsync("hybrid_federation_peers_learned_total{outcome=\"learned\"}") == 1, Deadline, "cluster a to learn cluster c from b");

            // With B gone, what C publishes still reaches A, pulled from C directly.
            b.Running.KillHard();
            await PublishAsync(c, seller, "Brass hinge");
            await FoundAsync(a, "hinge", "Brass hinge");

            // A restarted still knows C (kept in its store), though no one is left to introduce it.
            await a.Running.DisposeAsync();
            a.Launch([b], "--Supernode:Federation:LearnPrivateAddresses=true");
            await a.Running.WaitReadyAsync(failWhenExited: true);
            await PublishAsync(c, seller, "Brass door latch");
            await FoundAsync(a, "latch", "Brass door latch");
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    [Fact]
    public async Task AClusterNeverLearnsAPeerAtAPrivateAddressOrOverPlainHttpByDefault()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        try
        {
            using var seller = PeerIdentity.Generate();
            await StartIntroducerAsync(b, c, seller, "tankard", "Pewter tankard");
            a.Launch([b]);
            await a.Running.WaitReadyAsync(failWhenExited: true);

            // B introduces C at http://127.0.0.1:…: refused by the address policy, never dialed.
            await Eventually.TrueAsync(async () => await a.Running.MetricAsync("hybrid_federation_peers_learned_total{outcome=\"refused_address\"}") >= 1, Deadline, "cluster a to refuse b's introduction of c");
            Assert.Equal(0, await a.Running.MetricAsync("hybrid_federation_peers_learned_total{outcome=\"learned\"}"));
            await FoundAsync(a, "tankard", "Pewter tankard"); // still through B
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    [Fact]
    public async Task InAFederatedClusterOfSeveralSupernodesOnePullsAndAnotherTakesOverWhenItDies()
    {
        using var temp = new TempDir();
        var y = Cluster.Create(temp, "y");
        y.Launch([]);
        await y.Running.WaitReadyAsync(failWhenExited: true);
        // Cluster X: two supernodes on one Redis, sharing one federation key (made by the first to start).
        await using var x = await TestCluster.StartAsync(2, Interval, $"--Supernode:Federation:Peers={y.Url}", $"--Supernode:Federation:KeyFile={temp.Sub("x-key.pem")}");
        try
        {
            using var seller = PeerIdentity.Generate();
            await PublishAsync(y, seller, "Copper kettle");
            var first = x.Nodes[0].Client.Listings;
            await Eventually.TrueAsync(async () => (await first.SearchAsync(new SearchRequest { Text = "kettle" })).TotalHits == 1, Deadline, "cluster x to take the listing from y");

            const string Completed = "hybrid_federation_rounds_total{outcome=\"completed\"}";
            var rounds = await Task.WhenAll(x.Nodes.Select(n => n.MetricAsync(Completed)));
            Assert.True(rounds.Count(r => r > 0) == 1, $"exactly one supernode of the cluster pulls; rounds: {string.Join(", ", rounds)}");

            var puller = rounds[0] > 0 ? 0 : 1;
            x.Nodes[puller].KillHard();
            await PublishAsync(y, seller, "Copper saucepan");
            var survivor = x.Nodes[1 - puller].Client.Listings;
            await Eventually.TrueAsync(async () => (await survivor.SearchAsync(new SearchRequest { Text = "saucepan" })).TotalHits == 1, TimeSpan.FromSeconds(120), "the surviving supernode of x to take over pulling from y");
        }
        finally
        {
            await StopAllAsync(y);
        }
    }

    [Fact]
    public async Task AQuietFederatedSupernodeOnItsOwnStoreWritesNothingWhilePulling()
    {
        // Every durable write makes each reader of an embedded store drop its page cache, and search
        // reads its pages from that store: a cluster that pulls and finds nothing new must not write.
        using var temp = new TempDir();
        var (a, b) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"));
        try
        {
            await StartAllAsync((b, []), (a, [b]));
            using var seller = PeerIdentity.Generate();
            await PublishAsync(b, seller, "Enamel camping mug");
            await FoundAsync(a, "mug", "Enamel camping mug");

            const string Completed = "hybrid_federation_rounds_total{outcome=\"completed\"}";
            var store = new[] { "index.db", "index.db-wal" }.Select(f => Path.Combine(a.DataDir, f)).ToArray();
            (long, DateTime)[] Written() => [.. store.Select(f => new FileInfo(f)).Select(f => (f.Exists ? f.Length : -1, f.Exists ? f.LastWriteTimeUtc : default))];
            var settled = await a.Running.MetricAsync(Completed) + 2;
            await Eventually.TrueAsync(async () => await a.Running.MetricAsync(Completed) >= settled, Deadline, "cluster a to complete two more rounds after taking the listing");
            var before = Written();

            // Longer than half a federation lease (30 s), which a lease on the store would renew.
            var rounds = await a.Running.MetricAsync(Completed) + 55;
            await Eventually.TrueAsync(async () => await a.Running.MetricAsync(Completed) >= rounds, Deadline, "cluster a to complete 55 more rounds");
            Assert.Equal(before, Written());
            Assert.Contains("Enamel camping mug", await TitlesAsync(a, "mug"));
        }
        finally
        {
            await StopAllAsync(a, b);
        }
    }

    [Fact]
    public async Task FederationNeverPullsFromABlockedCluster()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        try
        {
            b.Launch([]);
            a.Launch([b], $"--Supernode:Federation:Blocked={b.Key.Id}");
            c.Launch([b]);
            await Task.WhenAll(new[] { a, b, c }.Select(x => x.Running.WaitReadyAsync(failWhenExited: true)));
            using var seller = PeerIdentity.Generate();
            await PublishAsync(b, seller, "Cast iron skillet");

            // C, which does not block B, takes the listing; A has by then heard B's id and dropped it.
            await FoundAsync(c, "skillet", "Cast iron skillet");
            await Eventually.TrueAsync(async () => await a.Running.MetricAsync("hybrid_federation_rounds_total{outcome=\"blocked\"}") >= 1, Deadline, "cluster a to find that the peer at b's URL is the blocked cluster");
            Assert.Empty(await TitlesAsync(a, "skillet"));
            Assert.Equal(0, await a.Running.MetricAsync("hybrid_federation_rounds_total{outcome=\"completed\"}"));
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    [Fact]
    public async Task AFederatedClusterSendingForgedOrOversizedListingsIsRefusedThrottledAndDropped()
    {
        using var temp = new TempDir();
        using var liar = new LyingCluster(ObjectSet.Listings);
        await using var server = await LoopbackGrpcServer.StartAsync<LyingFederationService>(s => s.AddSingleton(liar));
        var a = Cluster.Create(temp, "a");
        try
        {
            a.Node = SupernodeProcess.Launch(a.Port, a.DataDir, Interval, $"--Supernode:Federation:Peers={server.Url}", "--Supernode:Federation:MaxStrikes=2");
            await a.Running.WaitReadyAsync(failWhenExited: true);

            await Eventually.TrueAsync(async () => await a.Running.MetricAsync("hybrid_federation_rounds_total{outcome=\"struck\"}") >= 2, Deadline, "cluster a to strike the lying cluster twice");
            var helloes = liar.Helloes;
            // Dropped: over many more intervals, the liar is never asked again.
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.Equal(helloes, liar.Helloes);
            Assert.True(await a.Running.MetricAsync("hybrid_federation_listings_total{outcome=\"refused\"}") >= 2);
            Assert.Empty(await TitlesAsync(a, "forged"));
            Assert.Empty(await TitlesAsync(a, "oversized"));
            Assert.Contains("dropped", a.Running.Output, StringComparison.Ordinal);
        }
        finally
        {
            await StopAllAsync(a);
        }
    }

    [Fact]
    public async Task AFederatedClusterSendingForgedReviewsOrRepliesIsRefusedThrottledAndDropped()
    {
        using var temp = new TempDir();
        using var liar = new LyingCluster(ObjectSet.Reviews);
        await using var server = await LoopbackGrpcServer.StartAsync<LyingFederationService>(s => s.AddSingleton(liar));
        var a = Cluster.Create(temp, "a");
        try
        {
            a.Node = SupernodeProcess.Launch(a.Port, a.DataDir, Interval, $"--Supernode:Federation:Peers={server.Url}", "--Supernode:Federation:MaxStrikes=2");
            await a.Running.WaitReadyAsync(failWhenExited: true);

            await Eventually.TrueAsync(async () => await a.Running.MetricAsync("hybrid_federation_rounds_total{outcome=\"struck\"}") >= 2, Deadline, "cluster a to strike the cluster sending forged reviews twice");
            Assert.True(await a.Running.MetricAsync("hybrid_federation_reviews_total{outcome=\"refused\"}") >= 2);
            // Neither the review with a broken signature nor the one carrying a stranger's reply was kept.
            var listed = await a.Running.Client.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = liar.Seller.Id.ToString() });
            Assert.Equal(0, listed.Total);
            Assert.Equal(0, (await a.Running.Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = liar.Seller.Id.ToString() })).Count);
            Assert.Contains("dropped", a.Running.Output, StringComparison.Ordinal);
        }
        finally
        {
            await StopAllAsync(a);
        }
    }

    /// <summary>A federation client holding <paramref name="key"/>'s certificate, pinned to the <paramref name="server"/> cluster's key.</summary>
    private static GrpcChannel ClusterChannel(string url, PeerId server, PeerIdentity? key)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                ClientCertificates = key is null ? null : [key.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(1))],
                RemoteCertificateValidationCallback = (_, certificate, _, _) => PeerCertificates.Belongs(certificate, server),
            },
        };
        return GrpcChannel.ForAddress(url, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    private static FederationHello Nonce() => new() { Nonce = ByteString.CopyFrom(new byte[32]) };

    [Fact]
    public async Task FederationOverMutualTlsIsPinnedToClusterKeysAndChargedToEachCallingCluster()
    {
        using var temp = new TempDir();
        var (a, b, c) = (Cluster.Create(temp, "a"), Cluster.Create(temp, "b"), Cluster.Create(temp, "c"));
        var (aFederation, bFederation) = (Ports.Free(), Ports.Free());
        using var stranger = PeerIdentity.Generate();
        using var blocked = PeerIdentity.Generate();
        try
        {
            // A listens for federation on its own port; B pulls from it pinned to A's id; C pins A's URL to B's id (wrong).
            a.Node = SupernodeProcess.Launch(a.Port, a.DataDir, Interval, $"--Supernode:Federation:Listen=127.0.0.1:{aFederation}", "--Supernode:Federation:CallsPerSecond=5", $"--Supernode:Federation:Blocked={blocked.Id}");
            b.Node = SupernodeProcess.Launch(b.Port, b.DataDir, Interval, $"--Supernode:Federation:Listen=127.0.0.1:{bFederation}", $"--Supernode:Federation:Peers={a.Key.Id}@https://127.0.0.1:{aFederation}");
            c.Node = SupernodeProcess.Launch(c.Port, c.DataDir, Interval, $"--Supernode:Federation:Peers={b.Key.Id}@https://127.0.0.1:{aFederation}");
            await Task.WhenAll(a.Running.WaitReadyAsync(failWhenExited: true), b.Running.WaitReadyAsync(failWhenExited: true), c.Running.WaitReadyAsync(failWhenExited: true));
            using var seller = PeerIdentity.Generate();
            await PublishAsync(a, seller, "Walnut writing desk");

            await FoundAsync(b, "walnut desk", "Walnut writing desk");
            await Eventually.TrueAsync(() => Task.FromResult(c.Running.Output.Contains($"is pinned to cluster {b.Key.Id}", StringComparison.Ordinal)), Deadline, "cluster c to refuse cluster a's certificate, pinned as it is to b's id");
            Assert.Empty(await TitlesAsync(c, "walnut desk"));
            Assert.Equal(0, await c.Running.MetricAsync("hybrid_federation_rounds_total{outcome=\"completed\"}"));

            // The listener: answers with A's key, refuses a caller without a key, a blocked cluster, and a cluster over its budget.
            using (var anonymous = ClusterChannel($"https://127.0.0.1:{aFederation}", a.Key.Id, key: null))
            {
                // With TLS 1.3 the client's side of the handshake is done before the listener checks for a
                // client certificate, so the refusal reaches the caller either as a failed connection
                // (Unavailable) or as its connection cut while the call is sent (Internal, made by the
                // client library: the listener never answers).
                var refused = await Assert.ThrowsAsync<RpcException>(() => new FederationApi.FederationApiClient(anonymous).HelloAsync(Nonce()).ResponseAsync);
                Assert.Contains(refused.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Internal });
            }

            using (var blockedChannel = ClusterChannel($"https://127.0.0.1:{aFederation}", a.Key.Id, blocked))
            {
                var denied = await Assert.ThrowsAsync<RpcException>(() => new FederationApi.FederationApiClient(blockedChannel).HelloAsync(Nonce()).ResponseAsync);
                Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
                Assert.Contains(blocked.Id.ToString(), denied.Status.Detail, StringComparison.Ordinal);
            }

            using var strangerChannel = ClusterChannel($"https://127.0.0.1:{aFederation}", a.Key.Id, stranger);
            var federation = new FederationApi.FederationApiClient(strangerChannel);
            var answer = await federation.HelloAsync(Nonce());
            Assert.Equal(a.Key.Id, SignedEnvelopes.Verify(answer, EnvelopeKinds.FederationHello, DateTimeOffset.UtcNow).Signer);
            var exhausted = await Eventually.ReturnsAsync(
                async () =>
                {
                    try
                    {
                        await federation.HelloAsync(Nonce());
                        return null;
                    }
                    catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted)
                    {
                        return ex;
                    }
                },
                ex => ex is not null,
                Deadline,
                "cluster a to refuse the stranger cluster's calls past 5 a second");
            Assert.Contains("per cluster", exhausted!.Status.Detail, StringComparison.Ordinal);
            // Another cluster's budget is its own; B goes on pulling.
            using (var other = PeerIdentity.Generate())
            using (var otherChannel = ClusterChannel($"https://127.0.0.1:{aFederation}", a.Key.Id, other))
            {
                var otherClient = new FederationApi.FederationApiClient(otherChannel);
                await otherClient.HelloAsync(Nonce());

                // Forwarded mail is checked as a deposit is: sealed parts only, for a peer registered here.
                var unsealed = await Assert.ThrowsAsync<RpcException>(() => otherClient.ForwardMailAsync(new ForwardedMail { Sender = stranger.Id.ToString(), Recipient = blocked.Id.ToString(), Item = new SealedItem() }).ResponseAsync);
                Assert.Equal(StatusCode.InvalidArgument, unsealed.StatusCode);
                var item = new SealedItem { EphemeralPublicKey = ByteString.CopyFrom(stranger.PublicKey), Nonce = ByteString.CopyFrom(new byte[12]), Ciphertext = ByteString.CopyFromUtf8("sealed"), Tag = ByteString.CopyFrom(new byte[16]) };
                var nobodyHere = await Assert.ThrowsAsync<RpcException>(() => otherClient.ForwardMailAsync(new ForwardedMail { Sender = stranger.Id.ToString(), Recipient = blocked.Id.ToString(), Item = item }).ResponseAsync);
                Assert.Equal(StatusCode.NotFound, nobodyHere.StatusCode);
                var badSender = await Assert.ThrowsAsync<RpcException>(() => otherClient.ForwardMailAsync(new ForwardedMail { Sender = "someone", Recipient = blocked.Id.ToString(), Item = item }).ResponseAsync);
                Assert.Equal(StatusCode.InvalidArgument, badSender.StatusCode);
            }

            // The public port no longer answers federation calls.
            using var publicChannel = GrpcChannel.ForAddress(a.Url);
            var moved = await Assert.ThrowsAsync<RpcException>(() => new FederationApi.FederationApiClient(publicChannel).HelloAsync(Nonce()).ResponseAsync);
            Assert.Equal(StatusCode.Unimplemented, moved.StatusCode);
            Assert.False(a.Running.HasExited);
        }
        finally
        {
            await StopAllAsync(a, b, c);
        }
    }

    [Fact]
    public async Task AFederatedClusterAnsweringLookUpsWithAnotherKeyOrAForgedProfileIsNotBelieved()
    {
        using var temp = new TempDir();
        using var liar = new LyingCluster(liesAbout: null);
        await using var server = await LoopbackGrpcServer.StartAsync<LyingFederationService>(s => s.AddSingleton(liar));
        var a = Cluster.Create(temp, "a");
        try
        {
            a.Node = SupernodeProcess.Launch(a.Port, a.DataDir, Interval, $"--Supernode:Federation:Peers={server.Url}");
            await a.Running.WaitReadyAsync(failWhenExited: true);
            using var someone = PeerIdentity.Generate();

            foreach (var (peer, reason) in new[] { (someone.Id, "its key is not the peer's"), (liar.Seller.Id, "its profile does not verify") })
            {
                var refused = await Assert.ThrowsAsync<RpcException>(() => a.Running.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = peer.ToString() }).ResponseAsync);
                Assert.Equal(StatusCode.NotFound, refused.StatusCode);
                await Eventually.TrueAsync(() => Task.FromResult(a.Running.Output.Contains($"look-up of {peer} that was not used: {reason}", StringComparison.Ordinal)), Deadline, $"cluster a to log why the look-up of {peer} was not believed");
            }
        }
        finally
        {
            await StopAllAsync(a);
        }
    }

    [Fact]
    public async Task AClusterIntroducingGarbageOrAddressesInsideANetworkGetsNothingLearnedOrDialed()
    {
        using var temp = new TempDir();
        using var liar = new LyingCluster(liesAbout: null);
        await using var server = await LoopbackGrpcServer.StartAsync<LyingFederationService>(s => s.AddSingleton(liar));
        var a = Cluster.Create(temp, "a");
        try
        {
            a.Node = SupernodeProcess.Launch(a.Port, a.DataDir, Interval, $"--Supernode:Federation:Peers={server.Url}");
            await a.Running.WaitReadyAsync(failWhenExited: true);
            const string Learned = "hybrid_federation_peers_learned_total";
            await Eventually.TrueAsync(async () => await a.Running.MetricAsync($"{Learned}{{outcome=\"refused_address\"}}") >= 14, Deadline, "cluster a to weigh the liar's introductions");

            // Of each hello, 16 entries are weighed and the rest ignored: per hello, 2 are not a
            // cluster and a URL and 14 are inside a network; none is learned, so none is dialed.
            var invalid = await a.Running.MetricAsync($"{Learned}{{outcome=\"invalid\"}}");
            var refused = await a.Running.MetricAsync($"{Learned}{{outcome=\"refused_address\"}}");
            Assert.Equal(0, await a.Running.MetricAsync($"{Learned}{{outcome=\"learned\"}}"));
            // (Read one after the other while hellos go on: one hello's worth may fall between the reads.)
            Assert.True(invalid >= 2 && refused <= 7 * (invalid + 2), $"invalid {invalid}, refused {refused}: more than 16 entries of a hello were weighed");
            Assert.Equal(0, await a.Running.MetricAsync($"{Learned}{{outcome=\"over_limit\"}}"));
        }
        finally
        {
            await StopAllAsync(a);
        }
    }

    [Fact]
    public async Task TheFederationServiceRefusesMalformedRequestsWithReadableErrors()
    {
        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("a"));
        using var channel = GrpcChannel.ForAddress(node.GrpcUrl);
        var federation = new FederationApi.FederationApiClient(channel);

        var shortNonce = await Assert.ThrowsAsync<RpcException>(() => federation.HelloAsync(new FederationHello { Nonce = ByteString.CopyFrom(new byte[4]) }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, shortNonce.StatusCode);
        Assert.Contains("nonce", shortNonce.Status.Detail, StringComparison.Ordinal);

        var tooMany = new ReconcileRequest();
        tooMany.Ranges.AddRange(Enumerable.Range(0, 65).Select(_ => new VersionRange { Sum = ByteString.CopyFrom(new byte[8]) }));
        var many = await Assert.ThrowsAsync<RpcException>(() => federation.ReconcileAsync(tooMany).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, many.StatusCode);

        var badSum = new ReconcileRequest();
        badSum.Ranges.Add(new VersionRange { Sum = ByteString.CopyFrom(new byte[3]) });
        var sum = await Assert.ThrowsAsync<RpcException>(() => federation.ReconcileAsync(badSum).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, sum.StatusCode);
        Assert.Contains("8 bytes", sum.Status.Detail, StringComparison.Ordinal);

        var reversed = new ReconcileRequest();
        reversed.Ranges.Add(new VersionRange { Lower = "z", Upper = "a", Sum = ByteString.CopyFrom(new byte[8]) });
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => federation.ReconcileAsync(reversed).ResponseAsync)).StatusCode);

        var badId = new FetchListingsRequest();
        badId.ListingIds.Add("../../etc/passwd");
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => federation.FetchListingsAsync(badId).ResponseAsync)).StatusCode);

        var badReviewId = new FetchReviewsRequest();
        badReviewId.ReviewIds.Add("not-a-review");
        var review = await Assert.ThrowsAsync<RpcException>(() => federation.FetchReviewsAsync(badReviewId).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, review.StatusCode);
        Assert.Contains("review id", review.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => federation.FetchReviewsAsync(new FetchReviewsRequest()).ResponseAsync)).StatusCode);

        var unknownSet = new ReconcileRequest { Set = (ObjectSet)7 };
        unknownSet.Ranges.Add(new VersionRange { Sum = ByteString.CopyFrom(new byte[8]) });
        var set = await Assert.ThrowsAsync<RpcException>(() => federation.ReconcileAsync(unknownSet).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, set.StatusCode);
        Assert.Contains("listings or reviews", set.Status.Detail, StringComparison.Ordinal);

        // A review nobody holds is simply not in the answer.
        var absent = new FetchReviewsRequest();
        absent.ReviewIds.Add(new string('a', 32));
        Assert.Empty((await federation.FetchReviewsAsync(absent)).Reviews);

        // Mail is forwarded only by a cluster known by its key: never on the public port.
        using var someSender = PeerIdentity.Generate();
        using var someRecipient = PeerIdentity.Generate();
        var forwarded = new ForwardedMail { Sender = someSender.Id.ToString(), Recipient = someRecipient.Id.ToString(), Item = new SealedItem() };
        var notHere = await Assert.ThrowsAsync<RpcException>(() => federation.ForwardMailAsync(forwarded).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, notHere.StatusCode);
        Assert.Contains("federation listener", notHere.Status.Detail, StringComparison.Ordinal);

        var status = await Assert.ThrowsAsync<RpcException>(() => federation.ForwardMailStatusAsync(new ForwardedMailStatus { Sender = someSender.Id.ToString(), Request = new MailStatusRequest { Recipient = someRecipient.Id.ToString() } }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, status.StatusCode);
        // A relayed link is carried only for a cluster known by its key, and its first frame must open one.
        using (var relay = federation.Relay())
        {
            var now = DateTimeOffset.UtcNow;
            await relay.RequestStream.WriteAsync(new RelayFrame { Open = SignedEnvelopes.Sign(someSender, EnvelopeKinds.RelayRequest, 1, new RelayRequest { Target = someRecipient.Id.ToString() }, now, now.AddMinutes(1)) });
            var carried = await Assert.ThrowsAsync<RpcException>(() => relay.ResponseStream.MoveNext());
            Assert.Equal(StatusCode.PermissionDenied, carried.StatusCode);
        }

        using (var relay = federation.Relay())
        {
            await relay.RequestStream.WriteAsync(new RelayFrame { Accept = "some-link" });
            var notOpened = await Assert.ThrowsAsync<RpcException>(() => relay.ResponseStream.MoveNext());
            Assert.Equal(StatusCode.InvalidArgument, notOpened.StatusCode);
            Assert.Contains("signed request", notOpened.Status.Detail, StringComparison.Ordinal);
        }

        var badPeer = await Assert.ThrowsAsync<RpcException>(() => federation.LookupPeerAsync(new LookupPeerRequest { PeerId = "not a peer" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badPeer.StatusCode);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => federation.LookupPeerAsync(new LookupPeerRequest { PeerId = someRecipient.Id.ToString() }).ResponseAsync)).StatusCode);

        // A well-formed question about an empty index is answered: nothing to list.
        var whole = new ReconcileRequest();
        whole.Ranges.Add(new VersionRange { Sum = ByteString.CopyFrom(new byte[8]) });
        var answer = await federation.ReconcileAsync(whole);
        Assert.True(Assert.Single(answer.Ranges).Same);
        Assert.False(node.HasExited);
    }

    /// <summary>What the lying cluster serves and how often it was asked; it lies about one set and holds nothing of the other.</summary>
    public sealed class LyingCluster : IDisposable
    {
        private int _helloes;

        public LyingCluster(ObjectSet? liesAbout)
        {
            LiesAbout = liesAbout;
            var receipt = Trades.Complete(Buyer, Seller);
            Review = Trades.Review(Buyer, Seller.Id, receipt, 1, "A review its buyer never wrote like this");
            ReviewId = Reviews.Verify(Review, DateTimeOffset.UtcNow).ReviewId;
        }

        /// <summary>The set it sends forgeries of; null: it holds what the asker holds, and lies only in look-ups.</summary>
        public ObjectSet? LiesAbout { get; }

        public PeerIdentity Buyer { get; } = PeerIdentity.Generate();

        public PeerIdentity Stranger { get; } = PeerIdentity.Generate();

        public SignedEnvelope Review { get; }

        public string ReviewId { get; }

        public PeerIdentity Key { get; } = PeerIdentity.Generate();

        public PeerIdentity Seller { get; } = PeerIdentity.Generate();

        public Listing Forged { get; } = ListingFactory.Listing("A forged listing");

        public Listing Oversized { get; } = ListingFactory.Listing("An oversized listing", description: new string('x', 60_000));

        public int Helloes => Volatile.Read(ref _helloes);

        /// <summary>
        /// What it introduces in every hello: two entries that are not a cluster and a URL (a bad id,
        /// a file URL), three inside a network (the cloud metadata address, a private one, loopback
        /// over http), then more than a hello may name, all at loopback.
        /// </summary>
        public static IEnumerable<KnownCluster> Introductions(PeerId someone) =>
        [
            new() { ClusterId = "not-a-cluster-id", Url = "https://example.org" },
            new() { ClusterId = someone.ToString(), Url = "file:///etc/passwd" },
            new() { ClusterId = someone.ToString(), Url = "https://169.254.169.254/latest/meta-data" },
            new() { ClusterId = someone.ToString(), Url = "https://10.0.0.1:7443" },
            new() { ClusterId = someone.ToString(), Url = "http://127.0.0.1:1" },
            .. Enumerable.Range(0, 40).Select(i => new KnownCluster { ClusterId = someone.ToString(), Url = $"https://[::1]:{1000 + i}" }),
        ];

        public void Heard() => Interlocked.Increment(ref _helloes);

        public void Dispose()
        {
            Key.Dispose();
            Seller.Dispose();
            Buyer.Dispose();
            Stranger.Dispose();
        }
    }

    /// <summary>A cluster that answers its hello honestly, then offers two listings: one with a broken signature, one far over the size limit.</summary>
    public sealed class LyingFederationService(LyingCluster liar) : FederationApi.FederationApiBase
    {
        public override Task<SignedEnvelope> Hello(FederationHello request, ServerCallContext context)
        {
            liar.Heard();
            var now = DateTimeOffset.UtcNow;
            var answer = new FederationHelloAnswer { Nonce = request.Nonce };
            if (request.WantPeers)
            {
                answer.Peers.AddRange(LyingCluster.Introductions(liar.Stranger.Id));
            }

            return Task.FromResult(SignedEnvelopes.Sign(liar.Key, EnvelopeKinds.FederationHello, 1, answer, now, now.AddMinutes(5)));
        }

        public override Task<ReconcileReply> Reconcile(ReconcileRequest request, ServerCallContext context)
        {
            var reply = new ReconcileReply();
            foreach (var range in request.Ranges)
            {
                var answer = new RangeReply();
                if (request.Set != liar.LiesAbout)
                {
                    // Of the other set it holds what the asker holds: nothing to take.
                    answer.Same = true;
                }
                else if (request.Set == ObjectSet.Reviews)
                {
                    answer.Items.Add(new ListingVersion { ListingId = liar.ReviewId, Version = 1 });
                }
                else
                {
                    answer.Items.Add(new ListingVersion { ListingId = liar.Forged.ListingId, Version = 1 });
                    answer.Items.Add(new ListingVersion { ListingId = liar.Oversized.ListingId, Version = 1 });
                }

                reply.Ranges.Add(answer);
            }

            return Task.FromResult(reply);
        }

        /// <summary>Every look-up answered online at its own address: with its own key for any peer but the seller, and for the seller with a profile a stranger signed.</summary>
        public override Task<PeerInfo> LookupPeer(LookupPeerRequest request, ServerCallContext context)
        {
            var now = DateTimeOffset.UtcNow;
            var isSeller = request.PeerId == liar.Seller.Id.ToString();
            var info = new PeerInfo
            {
                PeerId = request.PeerId,
                PublicKey = ByteString.CopyFrom(isSeller ? liar.Seller.PublicKey : liar.Key.PublicKey),
                Online = true,
                LastSeenMs = now.ToUnixTimeMilliseconds(),
                Profile = SignedEnvelopes.Sign(liar.Stranger, EnvelopeKinds.Profile, 1, new PeerProfile { DisplayName = "Not the seller" }, now, now.AddHours(1)),
            };
            info.Endpoints.Add(new PeerEndpoint { Url = "https://198.51.100.7:7400" });
            return Task.FromResult(info);
        }

        public override Task<FetchReviewsReply> FetchReviews(FetchReviewsRequest request, ServerCallContext context)
        {
            // Each round one of two lies: the review with a broken signature, or the review whole with a stranger's "reply".
            var reply = new FetchReviewsReply();
            if (liar.Helloes % 2 == 1)
            {
                var forged = liar.Review.Clone();
                var bytes = forged.Signature.ToByteArray();
                bytes[^1] ^= 0x5a;
                forged.Signature = ByteString.CopyFrom(bytes);
                reply.Reviews.Add(new HeldReview { Review = forged });
            }
            else
            {
                reply.Reviews.Add(new HeldReview { Review = liar.Review, Reply = Reviews.SignReply(liar.Stranger, liar.ReviewId, "Not the seller's words", 1, DateTimeOffset.UtcNow) });
            }

            return Task.FromResult(reply);
        }

        public override Task<FetchListingsReply> FetchListings(FetchListingsRequest request, ServerCallContext context)
        {
            var reply = new FetchListingsReply();
            var forged = ListingFactory.Sign(liar.Seller, liar.Forged);
            var bytes = forged.Signature.ToByteArray();
            bytes[^1] ^= 0x5a;
            forged.Signature = ByteString.CopyFrom(bytes);
            // Each round offers one of the two first: both kinds of lie get refused.
            reply.Listings.Add(new HeldListing { Listing = liar.Helloes % 2 == 1 ? forged : ListingFactory.Sign(liar.Seller, liar.Oversized) });
            return Task.FromResult(reply);
        }
    }
}
