using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Hybrid.Client.Daemon;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;
using static Hybrid.Supernode.Tests.Infrastructure.Cli;

namespace Hybrid.Supernode.Tests;

/// <summary>Two (or more) real daemons with separate homes talking peer to peer, as users would run them.</summary>
public sealed class PeerLinkTests(SupernodeFixture fixture, ITestOutputHelper output) : IClassFixture<SupernodeFixture>, IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private static readonly string[] FastSessions = ["--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:03"];
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ChatGoesBothWaysDirectlyAndAnOrderEndsInAReceiptBothSidesHold()
    {
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var (sellerId, buyerId) = (await IdAsync(seller), await IdAsync(buyer));

        var sent = Json(await Ok(buyer.RunAsync("chat", "send", sellerId, "is it still available?", "--json")));
        Assert.Equal("direct", sent.GetProperty("status").GetString());
        Assert.Equal("direct", Json(await Ok(seller.RunAsync("chat", "send", buyerId, "yes, come by on Saturday", "--json"))).GetProperty("status").GetString());
        var sellerSees = Json(await Ok(seller.RunAsync("chat", "read", "--json"))).EnumerateArray().ToList();
        Assert.Contains(sellerSees, m => m.GetProperty("direction").GetString() == "in" && m.GetProperty("text").GetString() == "is it still available?" && m.GetProperty("peerId").GetString() == buyerId);
        var buyerSees = Json(await Ok(buyer.RunAsync("chat", "read", sellerId, "--json"))).EnumerateArray().Select(m => m.GetProperty("text").GetString()).ToList();
        Assert.Equal(["is it still available?", "yes, come by on Saturday"], buyerSees);

        var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Vintage road bike, steel frame", "--price", "120.00", "--currency", "EUR", "--quantity", "2", "--json"))).GetProperty("listingId").GetString()!;
        var offered = Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json")));
        var orderId = offered.GetProperty("orderId").GetString()!;
        Assert.Equal(("offered", "direct"), (offered.GetProperty("state").GetString(), offered.GetProperty("delivery").GetString()));
        var sellerOrder = Assert.Single(Json(await Ok(seller.RunAsync("order", "list", "--json"))).EnumerateArray());
        Assert.Equal((orderId, "seller", "offered", buyerId), (sellerOrder.GetProperty("orderId").GetString(), sellerOrder.GetProperty("role").GetString(), sellerOrder.GetProperty("state").GetString(), sellerOrder.GetProperty("counterparty").GetString()));

        Assert.Equal("accepted", Json(await Ok(seller.RunAsync("order", "accept", orderId, "--json"))).GetProperty("state").GetString());
        var completed = Json(await Ok(buyer.RunAsync("order", "complete", orderId, "--json")));
        Assert.Equal("completed", completed.GetProperty("state").GetString());
        var receiptBytes = Convert.FromBase64String(completed.GetProperty("receipt").GetString()!);
        var sellerCopy = Assert.Single(Json(await Ok(seller.RunAsync("order", "list", "--json"))).EnumerateArray());
        Assert.Equal("completed", sellerCopy.GetProperty("state").GetString());
        Assert.Equal(receiptBytes, Convert.FromBase64String(sellerCopy.GetProperty("receipt").GetString()!));

        // Anyone can check the receipt with nothing but its bytes.
        var receipt = Receipts.Verify(Receipt.Parser.ParseFrom(receiptBytes), DateTimeOffset.UtcNow);
        Assert.Equal((buyerId, sellerId, listingId), (receipt.Buyer.ToString(), receipt.Seller.ToString(), receipt.Offer.ListingId));
        Assert.Equal(120, receipt.Offer.UnitPrice.Units);
        var link = Assert.Single(Json(await Ok(buyer.RunAsync("status", "--json"))).GetProperty("links").EnumerateArray());
        Assert.Equal((sellerId, "direct"), (link.GetProperty("peerId").GetString(), link.GetProperty("path").GetString()));

        // The receipt backs a review from each side; the reviewed party answers, nobody deletes.
        var reviewId = Json(await Ok(buyer.RunAsync("review", orderId, "--stars", "5", "--text", "fast and friendly", "--aspect", "communication=5", "--json"))).GetProperty("reviewId").GetString()!;
        await Ok(seller.RunAsync("review", orderId, "--stars", "4", "--text", "paid at once", "--json"));
        await Ok(seller.RunAsync("review", "reply", reviewId, "Thank you, enjoy the ride!"));
        var reputation = Json(await Ok(buyer.RunAsync("reputation", sellerId, "--json")));
        Assert.Equal(1, reputation.GetProperty("count").GetInt32());
        var shown = Assert.Single(reputation.GetProperty("reviews").EnumerateArray());
        Assert.Equal(("fast and friendly", "Thank you, enjoy the ride!", 5), (shown.GetProperty("text").GetString(), shown.GetProperty("reply").GetString(), shown.GetProperty("stars").GetInt32()));
        Assert.Equal(4.0, Json(await Ok(seller.RunAsync("reputation", buyerId, "--json"))).GetProperty("average").GetDouble());
        var notCompleted = await buyer.RunAsync("review", Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json"))).GetProperty("orderId").GetString()!, "--stars", "1");
        Assert.Equal(5, notCompleted.ExitCode);
        Assert.Contains("cannot be reviewed yet", notCompleted.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHundredMegabyteGoodArrivesVerifiedAndResumesWhenTheSellerIsKilledMidTransfer()
    {
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        var goods = _temp.Sub("album.flac");
        WriteRandomFile(goods, 100 * 1024 * 1024);
        var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0", "--max-upload-rate", "25MB");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        try
        {
            var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Live album, lossless", "--price", "9.99", "--currency", "EUR", "--file", goods, "--json"))).GetProperty("listingId").GetString()!;
            var orderId = Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json"))).GetProperty("orderId").GetString()!;
            var early = await buyer.RunAsync("fetch", orderId);
            Assert.Equal(5, early.ExitCode);
            Assert.Contains("must accept it first", early.Stderr, StringComparison.Ordinal);
            await Ok(seller.RunAsync("order", "accept", orderId));

            var target = _temp.Sub("downloaded.flac");
            using var channel = ControlChannel.Open(buyer.Home);
            using var fetch = ControlChannel.Client(channel).Fetch(new FetchRequest { OrderId = orderId, OutPath = target });
            ulong killedAt = 0;
            FetchProgress? last = null;
            using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            await foreach (var progress in fetch.ResponseStream.ReadAllAsync(bounded.Token))
            {
                last = progress;
                if (killedAt == 0 && progress.ReceivedBytes >= 30_000_000)
                {
                    killedAt = progress.ReceivedBytes;
                    Assert.True(killedAt < progress.TotalBytes, "the seller was to be killed mid-transfer");
                    sellerDaemon.KillHard();
                    await sellerDaemon.DisposeAsync();
                    sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
                }
            }

            Assert.NotNull(last);
            output.WriteLine($"killed the seller at {killedAt} bytes; finished on attempt {last.Attempt}, resumed from {last.ResumedFromBytes}");
            Assert.True(last.Done);
            Assert.True(killedAt > 0, "the transfer finished before the seller could be killed");
            Assert.True(last.Attempt >= 2, $"expected the download to need a second attempt, got {last.Attempt}");
            Assert.True(last.ResumedFromBytes >= killedAt, $"resumed from {last.ResumedFromBytes}, but {killedAt} verified bytes were on disk when the seller died: it restarted instead of resuming");
            Assert.Equal(SHA256.HashData(File.ReadAllBytes(goods)), SHA256.HashData(File.ReadAllBytes(target)));
        }
        finally
        {
            await sellerDaemon.DisposeAsync();
        }
    }

    [Fact]
    public async Task WhenTheDirectAddressIsUnreachableChatOrdersAndGoodsGoThroughTheRelayWhichSeesOnlyCiphertext()
    {
        // Taps in front of both the gRPC port and the relay's byte port, which peers are told to reach
        // at the tap's port: every byte to or from the supernode crosses one of them.
        var (tapPort, relayPort, relayTapPort) = (Ports.Free(), Ports.Free(), Ports.Free());
        await using var node = await SupernodeProcess.StartAsync(_temp.Sub("sn"), [.. FastSessions, $"--Supernode:AdvertisedUrl=http://127.0.0.1:{tapPort}",
            $"--Supernode:RelayPort={relayPort}", $"--Supernode:RelayAdvertisedPort={relayTapPort}"]);
        await using var tap = new TcpTap(tapPort, new Uri(node.GrpcUrl).Port);
        await using var relayTap = new TcpTap(relayTapPort, relayPort);
        var via = $"http://127.0.0.1:{tap.Port}";
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        // The seller advertises an address nobody listens on (a NAT without port forwarding, in effect).
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", via, "--listen", "127.0.0.1:0", "--advertise", $"127.0.0.1:{Ports.Free()}");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", via, "--listen", "127.0.0.1:0");
        var (sellerId, buyerId) = (await IdAsync(seller), await IdAsync(buyer));

        const string Secret = "meet me behind the marmalade factory at 7431";
        Assert.Equal("relayed", Json(await Ok(buyer.RunAsync("chat", "send", sellerId, Secret, "--json"))).GetProperty("status").GetString());
        Assert.Contains(Json(await Ok(seller.RunAsync("chat", "read", "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString() == Secret);

        var goods = _temp.Sub("pattern.pdf");
        WriteRandomFile(goods, 4 * 1024 * 1024);
        const string Title = "Knitting pattern collection, printable";
        var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", Title, "--price", "4.50", "--currency", "EUR", "--file", goods, "--json"))).GetProperty("listingId").GetString()!;
        var orderId = Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json"))).GetProperty("orderId").GetString()!;
        await Ok(seller.RunAsync("order", "accept", orderId));
        var fetched = Json(await Ok(buyer.RunAsync("fetch", orderId, "--out", _temp.Sub("got.pdf"), "--json")));
        Assert.Equal("relayed", fetched.GetProperty("path").GetString());
        Assert.Equal(File.ReadAllBytes(goods), File.ReadAllBytes(_temp.Sub("got.pdf")));
        Assert.Equal("completed", Json(await Ok(buyer.RunAsync("order", "complete", orderId, "--json"))).GetProperty("state").GetString());

        var link = Assert.Single(Json(await Ok(buyer.RunAsync("status", "--json"))).GetProperty("links").EnumerateArray(), l => l.GetProperty("peerId").GetString() == sellerId);
        Assert.Equal("relayed", link.GetProperty("path").GetString());
        Assert.True(await node.MetricAsync("hybrid_relay_bytes_total") >= 4 * 1024 * 1024, "the goods did not pass through the relay");
        // Both daemons reached the byte port, so the links were spliced there rather than framed over gRPC.
        Assert.True(await node.MetricAsync("hybrid_relay_links_total{outcome=\"spliced\"}") >= 1, "no relayed link was spliced on the relay port");
        Assert.True(relayTap.CapturedBytes >= 4 * 1024 * 1024, $"the relay port's tap saw only {relayTap.CapturedBytes} bytes");

        // The taps saw everything the supernode got and sent: what was published in the open is there...
        Assert.True(tap.Saw(Encoding.UTF8.GetBytes(Title)), "the tap captured nothing useful: the check below would prove nothing");
        Assert.True(tap.Saw(Encoding.UTF8.GetBytes(buyerId)));
        // ...but neither the chat nor any part of the goods ever crossed either in plaintext.
        var bytes = File.ReadAllBytes(goods);
        foreach (var seen in new[] { tap, relayTap })
        {
            Assert.False(seen.Saw(Encoding.UTF8.GetBytes(Secret)), "the relay saw the chat text");
            foreach (var offset in new[] { 0, 1_000_000, 2_345_678, bytes.Length - 64 })
            {
                Assert.False(seen.Saw(bytes.AsSpan(offset, 64)), $"the relay saw the goods in plaintext at offset {offset}");
            }
        }
    }

    [Fact]
    public async Task APrivatePeerAdvertisesNoAddressAndIsReachedOnlyThroughTheRelay()
    {
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", fixture.Node.GrpcUrl, "--private");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var (sellerId, buyerId) = (await IdAsync(seller), await IdAsync(buyer));

        var lookedUp = Json(await Ok(buyer.RunAsync("peer", "lookup", sellerId, "--json")));
        Assert.Empty(lookedUp.GetProperty("endpoints").EnumerateArray());
        Assert.Equal("relayed", Json(await Ok(buyer.RunAsync("chat", "send", sellerId, "hello, private seller", "--json"))).GetProperty("status").GetString());
        // The private side dials through the relay too, even though the buyer advertises an address.
        Assert.Equal("relayed", Json(await Ok(seller.RunAsync("chat", "send", buyerId, "hello back", "--json"))).GetProperty("status").GetString());
        var status = Json(await Ok(seller.RunAsync("status", "--json")));
        Assert.True(status.GetProperty("private").GetBoolean());
        Assert.Empty(status.GetProperty("endpoints").EnumerateArray());
        Assert.All(status.GetProperty("links").EnumerateArray(), l => Assert.Equal("relayed", l.GetProperty("path").GetString()));
    }

    [Fact]
    public async Task WhenTheRelayPortCannotBeReachedRelayedLinksRunInFramesOverTheCalls()
    {
        // The supernode tells peers a relay port nobody listens on (a firewall that admits only the gRPC port, in effect).
        await using var node = await SupernodeProcess.StartAsync(_temp.Sub("sn"), [.. FastSessions, $"--Supernode:RelayAdvertisedPort={Ports.Free()}"]);
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", node.GrpcUrl, "--private");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", node.GrpcUrl, "--listen", "127.0.0.1:0");
        var sellerId = await IdAsync(seller);

        Assert.Equal("relayed", Json(await Ok(buyer.RunAsync("chat", "send", sellerId, "through the frames", "--json"))).GetProperty("status").GetString());
        Assert.Contains(Json(await Ok(seller.RunAsync("chat", "read", "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString() == "through the frames");
        Assert.Equal(0, await node.MetricAsync("hybrid_relay_links_total{outcome=\"spliced\"}"));
        Assert.True(await node.MetricAsync("hybrid_relay_bytes_total") > 0, "no byte crossed the relay in frames");
    }

    [Fact]
    public async Task ARelayToAPeerOnAnotherSupernodeGoesThroughTheDialersOwnSupernode()
    {
        await using var cluster = await TestCluster.StartAsync(1, FastSessions);
        var sn1 = cluster.Nodes[0];
        // The second supernode advertises an address clients cannot reach (as behind one load-balanced
        // address): a relay to its peers can only go through the supernode the dialer is connected to.
        var unreachable = $"http://127.0.0.1:{Ports.Free()}";
        await using var sn2 = await SupernodeProcess.StartAsync(
            _temp.Sub("sn2"),
            [
                $"--Supernode:Redis={cluster.Redis.ConnectionString}", $"--Supernode:ClusterId={cluster.ClusterId}",
                $"--Supernode:SiloPort={Ports.Free()}", $"--Supernode:GatewayPort={Ports.Free()}",
                $"--Supernode:AdvertisedUrl={unreachable}", .. FastSessions,
            ]);
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", sn2.GrpcUrl, "--private");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", sn1.GrpcUrl, "--listen", "127.0.0.1:0");
        var sellerId = await IdAsync(seller);
        Assert.Equal(unreachable, Json(await Ok(buyer.RunAsync("peer", "lookup", sellerId, "--json"))).GetProperty("supernode").GetString());

        Assert.Equal("relayed", Json(await Ok(buyer.RunAsync("chat", "send", sellerId, "hello across the cluster", "--json"))).GetProperty("status").GetString());
        Assert.Contains(Json(await Ok(seller.RunAsync("chat", "read", "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString() == "hello across the cluster");
        var link = Assert.Single(Json(await Ok(buyer.RunAsync("status", "--json"))).GetProperty("links").EnumerateArray());
        Assert.Equal(("relayed", sn1.GrpcUrl), (link.GetProperty("path").GetString(), link.GetProperty("address").GetString()));
        Assert.True(await sn1.MetricAsync("hybrid_relay_links_total{outcome=\"forwarded\"}") >= 1, "the dialer's supernode forwarded no link");
    }

    [Fact]
    public async Task AMessageForAnOfflinePeerWaitsSealedInItsMailboxAndArrivesThroughAnotherSupernode()
    {
        await using var cluster = await TestCluster.StartAsync(2, FastSessions);
        var (sn1, sn2) = (cluster.Nodes[0], cluster.Nodes[1]);
        var (sender, recipient) = (await InitAsync("sender", "Sid"), await InitAsync("recipient", "Ria"));
        var recipientId = await IdAsync(recipient);
        await using (await DaemonProcess.StartAsync(recipient, "--supernode", sn2.GrpcUrl, "--listen", "127.0.0.1:0"))
        {
            // Online once, so the network knows its key; then it goes away.
        }

        await using var senderDaemon = await DaemonProcess.StartAsync(sender, "--supernode", sn1.GrpcUrl, "--listen", "127.0.0.1:0");
        await Eventually.ReturnsAsync(
            () => sender.RunAsync("peer", "lookup", recipientId, "--json"),
            r => r.ExitCode == 0 && !Json(r).GetProperty("online").GetBoolean(),
            Deadline,
            "the recipient to show offline");
        var sent = Json(await Ok(sender.RunAsync("chat", "send", recipientId, "your parcel left today", "--json")));
        Assert.Equal("stored", sent.GetProperty("status").GetString());
        Assert.Equal(1, Json(await Ok(sender.RunAsync("status", "--json"))).GetProperty("mailboxPending").GetInt32());

        await using var back = await DaemonProcess.StartAsync(recipient, "--supernode", sn2.GrpcUrl, "--listen", "127.0.0.1:0");
        await Eventually.ReturnsAsync(
            () => recipient.RunAsync("chat", "read", "--json"),
            r => r.ExitCode == 0 && Json(r).EnumerateArray().Any(m => m.GetProperty("text").GetString() == "your parcel left today"),
            Deadline,
            "the recipient to take the message from its mailbox");
        await Eventually.ReturnsAsync(
            () => sender.RunAsync("chat", "read", recipientId, "--json"),
            r => r.ExitCode == 0 && Json(r).EnumerateArray().Single().GetProperty("status").GetString() == "delivered",
            Deadline,
            "the sender to see the stored message as delivered");
        Assert.Equal(0, Json(await Ok(sender.RunAsync("status", "--json"))).GetProperty("mailboxPending").GetInt32());
    }

    [Fact]
    public async Task AHostPresentingAnotherKeyIsRefusedBeforeAnythingIsSent()
    {
        var (victim, impostor) = (await InitAsync("victim", "Vic"), await InitAsync("impostor", "Vic"));
        await using var victimDaemon = await DaemonProcess.StartAsync(victim, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var impostorDaemon = await DaemonProcess.StartAsync(impostor, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var victimId = PeerId.Parse(await IdAsync(victim));
        var impostorEndpoint = Json(await Ok(impostor.RunAsync("status", "--json"))).GetProperty("endpoints")[0].GetString()!;
        var victimEndpoint = Json(await Ok(victim.RunAsync("status", "--json"))).GetProperty("endpoints")[0].GetString()!;

        using var me = PeerIdentity.Generate();
        using var certificate = me.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        await using var connection = new SupernodeConnection(me, new SupernodeConnectionOptions { Seeds = [fixture.Node.GrpcUrl], DisplayName = "Me" });
        using var dialer = new PeerDialer(me, certificate, connection, privateMode: false, NullLogger.Instance);
        var now = DateTimeOffset.UtcNow;
        var chat = SignedEnvelopes.Sign(me, EnvelopeKinds.Chat, 1, new ChatMessage { To = victimId.ToString(), Sequence = 1, Text = "for Vic only", SentMs = now.ToUnixTimeMilliseconds() }, now, now.AddDays(1));

        var refused = await Assert.ThrowsAsync<PeerKeyMismatchException>(() => dialer.CallDirectAsync(impostorEndpoint, victimId, (c, ct) => c.ChatAsync(chat, cancellationToken: ct).ResponseAsync, CancellationToken.None));
        Assert.Contains("presented another key", refused.Message, StringComparison.Ordinal);
        Assert.Empty(Json(await Ok(impostor.RunAsync("chat", "read", "--json"))).EnumerateArray());

        // The same call to the real host goes through: the refusal was about the key, nothing else.
        await dialer.CallDirectAsync(victimEndpoint, victimId, (c, ct) => c.ChatAsync(chat, cancellationToken: ct).ResponseAsync, CancellationToken.None);
        Assert.Contains(Json(await Ok(victim.RunAsync("chat", "read", "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString() == "for Vic only");
    }

    [Fact]
    public async Task DaemonCommandsFailWithOneLineAndTheDocumentedExitCodes()
    {
        var user = await InitAsync("user", "Uma");
        var other = await IdAsync(await InitAsync("other", "Oli"));
        var noDaemon = await user.RunAsync("chat", "send", other, "hi");
        Assert.Equal(4, noDaemon.ExitCode);
        Assert.Contains("no daemon is running", noDaemon.Stderr, StringComparison.Ordinal);
        Assert.Single(noDaemon.Stderr.Trim().Split('\n'));

        await using var daemon = await DaemonProcess.StartAsync(user, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        Assert.Equal(2, (await user.RunAsync("chat", "send", "not-a-peer-id", "hi")).ExitCode);
        Assert.Equal(3, (await user.RunAsync("order", "accept", "AAAAAAAAAAAAAAAAAAAAAAAAAA")).ExitCode);
        var unknownPeer = await user.RunAsync("chat", "send", other, "are you there?");
        Assert.Equal(3, unknownPeer.ExitCode);
        Assert.Contains("not known on this network", unknownPeer.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, (await user.RunAsync("fetch", "sha256:" + new string('0', 64))).ExitCode);
        Assert.Empty(Json(await Ok(user.RunAsync("order", "list", "--json"))).EnumerateArray());
    }

    private Task<CliRunner> InitAsync(string home, string name) => Infrastructure.Cli.InitAsync(_temp, home, name);

    private static async Task<string> IdAsync(CliRunner user) => (await Ok(user.RunAsync("id"))).Stdout.Trim();

    private static void WriteRandomFile(string path, int size)
    {
        var random = new Random(size);
        var buffer = new byte[1024 * 1024];
        using var file = File.Create(path);
        for (var written = 0; written < size; written += buffer.Length)
        {
            random.NextBytes(buffer);
            file.Write(buffer, 0, Math.Min(buffer.Length, size - written));
        }
    }
}
