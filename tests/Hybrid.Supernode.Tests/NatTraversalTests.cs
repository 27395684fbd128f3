using System.Security.Cryptography;
using System.Text.Json;
using Hybrid.Testing;
using Xunit.Abstractions;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Peers behind home routers, in a NAT lab of network namespaces (root, as CI runs): a supernode and
/// a peer on public addresses, homes behind MASQUERADE routers. Each case is a chat with its path asserted.
/// </summary>
[Collection(NatLabGroup.Name)]
public sealed class NatTraversalTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task APeerBehindAHomeRouterIsDialedBackAsUnreachableAndReachesAPublicPeerDirectly()
    {
        await using var lab = await NatLab.CreateAsync();
        var supernodeHost = await lab.AddPublicAsync();
        var publicHost = await lab.AddPublicAsync();
        var homeHost = await lab.AddHomeAsync(NatKind.EndpointIndependent);
        await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn"));

        var (open, home) = (await InitAsync(publicHost, "open", "Olga"), await InitAsync(homeHost, "home", "Hugo"));
        await using var openDaemon = await DaemonProcess.StartAsync(open, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await using var homeDaemon = await DaemonProcess.StartAsync(home, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        var openStatus = await DialedBackAsync(open);
        var homeStatus = await DialedBackAsync(home);
        output.WriteLine($"public peer: {openStatus}{Environment.NewLine}home peer: {homeStatus}");

        Assert.True(openStatus.GetProperty("reachability").GetProperty("reachable").GetBoolean());
        Assert.False(homeStatus.GetProperty("reachability").GetProperty("reachable").GetBoolean());
        // The supernode sees the home peer at its router's address.
        Assert.StartsWith($"{homeHost.PublicAddress}:", homeStatus.GetProperty("observedAddress").GetString(), StringComparison.Ordinal);

        var openId = openStatus.GetProperty("peerId").GetString()!;
        var sent = Json(await Ok(home.RunAsync("chat", "send", openId, "hello from behind a router", "--json")));
        Assert.Equal("direct", sent.GetProperty("status").GetString());

        // The other way the public peer cannot dial in; the first message rides the relay, then a
        // punch through the home router (endpoint-independent) upgrades the link.
        var homeId = homeStatus.GetProperty("peerId").GetString()!;
        await Ok(open.RunAsync("chat", "send", homeId, "hello, home", "--json"));
        var link = await DirectLinkAsync(open, homeId);
        Assert.StartsWith($"https://{homeHost.PublicAddress}:", link.GetProperty("address").GetString(), StringComparison.Ordinal);
        Assert.Equal("direct", Json(await Ok(open.RunAsync("chat", "send", homeId, "now directly", "--json"))).GetProperty("status").GetString());
        Assert.Contains(Json(await Ok(home.RunAsync("chat", "read", openId, "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString() == "now directly");
    }

    [Fact]
    public async Task APublicPeerReachesAPeerBehindASymmetricNatDirectlyByConnectionReversal()
    {
        await using var lab = await NatLab.CreateAsync();
        var supernodeHost = await lab.AddPublicAsync();
        var publicHost = await lab.AddPublicAsync();
        var homeHost = await lab.AddHomeAsync(NatKind.Symmetric);
        await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn"));
        var (open, home) = (await InitAsync(publicHost, "open", "Olga"), await InitAsync(homeHost, "home", "Hugo"));
        await using var openDaemon = await DaemonProcess.StartAsync(open, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await using var homeDaemon = await DaemonProcess.StartAsync(home, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await DialedBackAsync(open);
        var homeId = (await DialedBackAsync(home)).GetProperty("peerId").GetString()!;

        // No punch gets through a symmetric NAT, but the home peer can dial out: asked over the
        // relay, it dials the public peer and opens the other direction inside that connection.
        await Ok(open.RunAsync("chat", "send", homeId, "hello, strict router", "--json"));
        var link = await DirectLinkAsync(open, homeId);
        Assert.Contains("the peer opened to this one", link.GetProperty("why").GetString(), StringComparison.Ordinal);
        Assert.Equal("direct", Json(await Ok(open.RunAsync("chat", "send", homeId, "now directly", "--json"))).GetProperty("status").GetString());
        var openId = Json(await Ok(open.RunAsync("status", "--json"))).GetProperty("peerId").GetString()!;
        Assert.Equal("direct", Json(await Ok(home.RunAsync("chat", "send", openId, "and back", "--json"))).GetProperty("status").GetString());
    }

    [Fact]
    public async Task TwoHomesBehindEndpointIndependentNatsPunchADirectLinkAndAGoodArrivesOverIt()
    {
        await using var lab = await NatLab.CreateAsync();
        var supernodeHost = await lab.AddPublicAsync();
        var (buyerHost, sellerHost) = (await lab.AddHomeAsync(NatKind.EndpointIndependent), await lab.AddHomeAsync(NatKind.EndpointIndependent));
        await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn"));
        var (buyer, seller) = (await InitAsync(buyerHost, "buyer", "Bea"), await InitAsync(sellerHost, "seller", "Sam"));
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        var sellerId = (await DialedBackAsync(seller)).GetProperty("peerId").GetString()!;
        await DialedBackAsync(buyer);

        Assert.Equal("relayed", Json(await Ok(buyer.RunAsync("chat", "send", sellerId, "is it still available?", "--json"))).GetProperty("status").GetString());
        var link = await DirectLinkAsync(buyer, sellerId);
        Assert.StartsWith($"https://{sellerHost.PublicAddress}:", link.GetProperty("address").GetString(), StringComparison.Ordinal);
        Assert.Contains("hole punch", link.GetProperty("why").GetString(), StringComparison.Ordinal);

        var goods = _temp.Sub("goods.bin");
        await File.WriteAllBytesAsync(goods, RandomNumberGenerator.GetBytes(3 * 1024 * 1024));
        var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Field recordings, lossless", "--price", "3.00", "--currency", "EUR", "--file", goods, "--json"))).GetProperty("listingId").GetString()!;
        var orderId = Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json"))).GetProperty("orderId").GetString()!;
        await Ok(seller.RunAsync("order", "accept", orderId));
        var fetched = Json(await Ok(buyer.RunAsync("fetch", orderId, "--out", _temp.Sub("got.bin"), "--json")));
        Assert.Equal("direct", fetched.GetProperty("path").GetString());
        Assert.Equal(await File.ReadAllBytesAsync(goods), await File.ReadAllBytesAsync(_temp.Sub("got.bin")));

        // One punched connection joins the two ports; the other direction runs inside it.
        var buyerId = Json(await Ok(buyer.RunAsync("status", "--json"))).GetProperty("peerId").GetString()!;
        Assert.Equal("direct", Json(await Ok(seller.RunAsync("chat", "send", buyerId, "thanks for your order", "--json"))).GetProperty("status").GetString());
    }

    [Fact]
    public async Task ATransferStartedOnTheRelayMovesToThePunchedLinkAtAChunkBoundaryAndArrivesIntact()
    {
        await using var lab = await NatLab.CreateAsync();
        var supernodeHost = await lab.AddPublicAsync();
        var (buyerHost, sellerHost) = (await lab.AddHomeAsync(NatKind.EndpointIndependent), await lab.AddHomeAsync(NatKind.EndpointIndependent));
        await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn"));
        // Both punch only 4 s after their first relayed call, and the seller sends 1 MB/s: the 12 MiB
        // download starts on the relay and is upgraded while it runs.
        var buyer = new CliRunner(_temp.Sub("buyer")) { Namespace = buyerHost.Namespace, Variables = new Dictionary<string, string> { ["HYBRID_PUNCH_DELAY_MS"] = "4000" } };
        await Ok(buyer.RunAsync("init", "--name", "Bea"));
        var seller = new CliRunner(_temp.Sub("seller")) { Namespace = sellerHost.Namespace, Variables = buyer.Variables };
        await Ok(seller.RunAsync("init", "--name", "Sam"));
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0", "--max-upload-rate", "1MB");
        await DialedBackAsync(seller);
        await DialedBackAsync(buyer);

        var goods = _temp.Sub("goods.bin");
        const int Size = 12 * 1024 * 1024;
        await File.WriteAllBytesAsync(goods, RandomNumberGenerator.GetBytes(Size));
        var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Lecture recordings", "--price", "2.00", "--currency", "EUR", "--file", goods, "--json"))).GetProperty("listingId").GetString()!;
        var orderId = Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json"))).GetProperty("orderId").GetString()!;
        await Ok(seller.RunAsync("order", "accept", orderId));
        var fetched = Json(await Ok(buyer.RunAsync(TimeSpan.FromSeconds(120), "fetch", orderId, "--out", _temp.Sub("got.bin"), "--json")));

        Assert.Equal(await File.ReadAllBytesAsync(goods), await File.ReadAllBytesAsync(_temp.Sub("got.bin")));
        Assert.Equal("direct", fetched.GetProperty("path").GetString());
        var relayed = await RelayedBytesAsync(node);
        Assert.True(relayed is > 512 * 1024 and < Size, $"{relayed} bytes crossed the relay: the download should have started there and moved off it");
        Assert.Contains(Json(await Ok(buyer.RunAsync("status", "--json"))).GetProperty("events").EnumerateArray(), e => e.GetString()!.Contains("upgraded to direct", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnEndpointIndependentHomeAndASymmetricHomeMeetByProbingManyPorts()
    {
        await using var lab = await NatLab.CreateAsync();
        var supernodeHost = await lab.AddPublicAsync();
        var (easyHost, hardHost) = (await lab.AddHomeAsync(NatKind.EndpointIndependent), await lab.AddHomeAsync(NatKind.Symmetric));
        await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn"));
        var (easy, hard) = (await InitAsync(easyHost, "easy", "Eve"), await InitAsync(hardHost, "hard", "Hal"));
        await using var easyDaemon = await DaemonProcess.StartAsync(easy, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await using var hardDaemon = await DaemonProcess.StartAsync(hard, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        var hardId = (await DialedBackAsync(hard)).GetProperty("peerId").GetString()!;
        await DialedBackAsync(easy);

        await Ok(easy.RunAsync("chat", "send", hardId, "hello across a strict router", "--json"));
        var link = await DirectLinkAsync(easy, hardId);
        output.WriteLine(link.ToString());
        Assert.Equal("direct", Json(await Ok(easy.RunAsync("chat", "send", hardId, "now directly", "--json"))).GetProperty("status").GetString());
        Assert.Contains(Json(await Ok(hard.RunAsync("chat", "read", "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString() == "now directly");
    }

    [Fact]
    public async Task TwoHomesBehindSymmetricNatsStayRelayedAndStillTalk()
    {
        await using var lab = await NatLab.CreateAsync();
        var supernodeHost = await lab.AddPublicAsync();
        var (aHost, bHost) = (await lab.AddHomeAsync(NatKind.Symmetric), await lab.AddHomeAsync(NatKind.Symmetric));
        await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn"));
        var (a, b) = (await InitAsync(aHost, "a", "Ann"), await InitAsync(bHost, "b", "Ben"));
        await using var aDaemon = await DaemonProcess.StartAsync(a, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await using var bDaemon = await DaemonProcess.StartAsync(b, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        var bId = (await DialedBackAsync(b)).GetProperty("peerId").GetString()!;
        await DialedBackAsync(a);

        Assert.Equal("relayed", Json(await Ok(a.RunAsync("chat", "send", bId, "hello across two strict routers", "--json"))).GetProperty("status").GetString());
        var status = await Eventually.ReturnsAsync(
            async () => Json(await Ok(a.RunAsync("status", "--json"))),
            s => s.GetProperty("events").EnumerateArray().Any(e => e.GetString()!.Contains("hole punch to", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60),
            "the hole punch between two symmetric NATs to give up");
        output.WriteLine(status.ToString());
        var link = Assert.Single(status.GetProperty("links").EnumerateArray(), l => l.GetProperty("peerId").GetString() == bId);
        Assert.Equal("relayed", link.GetProperty("path").GetString());
        Assert.Equal("relayed", Json(await Ok(a.RunAsync("chat", "send", bId, "still here", "--json"))).GetProperty("status").GetString());
        Assert.Contains(Json(await Ok(b.RunAsync("chat", "read", "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString() == "still here");
    }

    [Fact]
    public async Task APrivatePeerIsNeverPunchedAndItsAddressNeverShown()
    {
        await using var lab = await NatLab.CreateAsync();
        var supernodeHost = await lab.AddPublicAsync();
        var (aHost, bHost) = (await lab.AddHomeAsync(NatKind.EndpointIndependent), await lab.AddHomeAsync(NatKind.EndpointIndependent));
        await using var node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn"));
        var (a, hidden) = (await InitAsync(aHost, "a", "Ann"), await InitAsync(bHost, "hidden", "Hal"));
        await using var aDaemon = await DaemonProcess.StartAsync(a, "--supernode", node.GrpcUrl, "--listen", "0.0.0.0:0");
        await using var hiddenDaemon = await DaemonProcess.StartAsync(hidden, "--supernode", node.GrpcUrl, "--private");
        var hiddenId = Json(await Ok(hidden.RunAsync("status", "--json"))).GetProperty("peerId").GetString()!;

        var looked = Json(await Ok(a.RunAsync("peer", "lookup", hiddenId, "--json")));
        Assert.DoesNotContain(bHost.PublicAddress, looked.ToString(), StringComparison.Ordinal);
        Assert.Equal("relayed", Json(await Ok(a.RunAsync("chat", "send", hiddenId, "hello, private", "--json"))).GetProperty("status").GetString());
        var link = Assert.Single(Json(await Ok(a.RunAsync("status", "--json"))).GetProperty("links").EnumerateArray());
        Assert.Equal("relayed", link.GetProperty("path").GetString());
        Assert.Contains("private mode", link.GetProperty("why").GetString(), StringComparison.Ordinal);
    }

    private async Task<CliRunner> InitAsync(LabHost host, string home, string name)
    {
        var user = new CliRunner(_temp.Sub(home)) { Namespace = host.Namespace };
        await Ok(user.RunAsync("init", "--name", name));
        return user;
    }

    /// <summary>Waits until <paramref name="user"/>'s link to <paramref name="peer"/> is direct; returns the link.</summary>
    private static async Task<JsonElement> DirectLinkAsync(CliRunner user, string peer)
    {
        var status = await Eventually.ReturnsAsync(
            async () => Json(await Ok(user.RunAsync("status", "--json"))),
            s => s.GetProperty("links").EnumerateArray().Any(l => l.GetProperty("peerId").GetString() == peer && l.GetProperty("path").GetString() == "direct"),
            TimeSpan.FromSeconds(60),
            $"the link of {user.Home} to {peer} to become direct (hole punch)");
        return status.GetProperty("links").EnumerateArray().Single(l => l.GetProperty("peerId").GetString() == peer);
    }

    private static async Task<JsonElement> DialedBackAsync(CliRunner user) =>
        await Eventually.ReturnsAsync(
            async () => Json(await Ok(user.RunAsync("status", "--json"))),
            s => s.GetProperty("reachability").ValueKind == JsonValueKind.Object,
            Deadline,
            $"the supernode's dial-back report in the status of {user.Home}");

    private static async Task<double> RelayedBytesAsync(SupernodeProcess node)
    {
        var metrics = await (await node.OpsGetAsync("/metrics")).Content.ReadAsStringAsync();
        var line = metrics.Split('\n').Single(l => l.StartsWith("hybrid_relay_bytes_total ", StringComparison.Ordinal));
        return double.Parse(line["hybrid_relay_bytes_total ".Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<CliResult> Ok(Task<CliResult> run)
    {
        var result = await run;
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stderr}");
        return result;
    }

    private static JsonElement Json(CliResult result) => JsonDocument.Parse(result.Stdout).RootElement.Clone();
}

/// <summary>NAT lab tests run one at a time (each builds its own namespaces, but they share the CPU with their daemons).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NatLabGroup
{
    public const string Name = "NAT lab";
}
