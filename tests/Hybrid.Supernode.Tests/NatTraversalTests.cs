using System.Security.Cryptography;
using System.Text.Json;
using Hybrid.Testing;
using Xunit.Abstractions;
using static Hybrid.Supernode.Tests.Infrastructure.Cli;

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
        await using var pair = await StartPairAsync(lab, l => l.AddPublicAsync(), l => l.AddHomeAsync(NatKind.EndpointIndependent));
        var (open, home, homeHost, openStatus, homeStatus) = (pair.A, pair.B, pair.HostB, pair.StatusA, pair.StatusB);
        output.WriteLine($"public peer: {openStatus}{Environment.NewLine}home peer: {homeStatus}");

        Assert.True(openStatus.GetProperty("reachability").GetProperty("reachable").GetBoolean());
        Assert.False(homeStatus.GetProperty("reachability").GetProperty("reachable").GetBoolean());
        // The supernode sees the home peer at its router's address.
        Assert.StartsWith($"{homeHost.PublicAddress}:", homeStatus.GetProperty("observedAddress").GetString(), StringComparison.Ordinal);

        var openId = openStatus.GetProperty("peerId").GetString()!;
        var sent = Json(await Ok(home.RunAsync("chat", "send", openId, "hello from behind a router", "--json")));
        Assert.Equal("direct", sent.GetProperty("status").GetString());

        // The other way the public peer cannot dial in: the first message rides the relay, then the
        // home peer, asked over it, dials out and opens the other direction (connection reversal).
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
        await using var pair = await StartPairAsync(lab, l => l.AddPublicAsync(), l => l.AddHomeAsync(NatKind.Symmetric));
        var (open, home, openId, homeId) = (pair.A, pair.B, pair.IdA, pair.IdB);

        // No punch gets through a symmetric NAT, but the home peer can dial out: asked over the
        // relay, it dials the public peer and opens the other direction inside that connection.
        await Ok(open.RunAsync("chat", "send", homeId, "hello, strict router", "--json"));
        var link = await DirectLinkAsync(open, homeId);
        Assert.Contains("the peer opened to this one", link.GetProperty("why").GetString(), StringComparison.Ordinal);
        Assert.Equal("direct", Json(await Ok(open.RunAsync("chat", "send", homeId, "now directly", "--json"))).GetProperty("status").GetString());
        Assert.Equal("direct", Json(await Ok(home.RunAsync("chat", "send", openId, "and back", "--json"))).GetProperty("status").GetString());
    }

    [Fact]
    public async Task TwoHomesBehindEndpointIndependentNatsPunchADirectLinkAndAGoodArrivesOverIt()
    {
        await using var lab = await NatLab.CreateAsync();
        await using var pair = await StartPairAsync(lab, l => l.AddHomeAsync(NatKind.EndpointIndependent), l => l.AddHomeAsync(NatKind.EndpointIndependent));
        var (buyer, seller, sellerHost, buyerId, sellerId) = (pair.A, pair.B, pair.HostB, pair.IdA, pair.IdB);

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
        Assert.Equal("direct", Json(await Ok(seller.RunAsync("chat", "send", buyerId, "thanks for your order", "--json"))).GetProperty("status").GetString());
    }

    [Fact]
    public async Task ATransferStartedOnTheRelayMovesToThePunchedLinkAtAChunkBoundaryAndArrivesIntact()
    {
        // Both punch only 4 s after their first relayed call, and the seller sends 512 kB/s: the 12 MiB
        // download starts on the relay and is upgraded while it runs (about 24 s, so a loaded machine
        // still punches before the download ends).
        await using var lab = await NatLab.CreateAsync();
        await using var pair = await StartPairAsync(
            lab,
            l => l.AddHomeAsync(NatKind.EndpointIndependent),
            l => l.AddHomeAsync(NatKind.EndpointIndependent),
            argsB: ["--max-upload-rate", "512KB"],
            variables: new Dictionary<string, string> { ["HYBRID_PUNCH_DELAY_MS"] = "4000" });
        var (buyer, seller, node) = (pair.A, pair.B, pair.Node);

        var goods = _temp.Sub("goods.bin");
        const int Size = 12 * 1024 * 1024;
        await File.WriteAllBytesAsync(goods, RandomNumberGenerator.GetBytes(Size));
        var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Lecture recordings", "--price", "2.00", "--currency", "EUR", "--file", goods, "--json"))).GetProperty("listingId").GetString()!;
        var orderId = Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json"))).GetProperty("orderId").GetString()!;
        await Ok(seller.RunAsync("order", "accept", orderId));
        var fetched = Json(await Ok(buyer.RunAsync(TimeSpan.FromSeconds(120), "fetch", orderId, "--out", _temp.Sub("got.bin"), "--json")));

        Assert.Equal(await File.ReadAllBytesAsync(goods), await File.ReadAllBytesAsync(_temp.Sub("got.bin")));
        Assert.Equal("direct", fetched.GetProperty("path").GetString());
        var relayed = await node.MetricAsync("hybrid_relay_bytes_total");
        Assert.True(relayed is > 512 * 1024 and < Size, $"{relayed} bytes crossed the relay: the download should have started there and moved off it");
        Assert.Contains(Json(await Ok(buyer.RunAsync("status", "--json"))).GetProperty("events").EnumerateArray(), e => e.GetString()!.Contains("upgraded to direct", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnEndpointIndependentHomeAndASymmetricHomeMeetByProbingManyPorts()
    {
        await using var lab = await NatLab.CreateAsync();
        await using var pair = await StartPairAsync(lab, l => l.AddHomeAsync(NatKind.EndpointIndependent), l => l.AddHomeAsync(NatKind.Symmetric));
        var (easy, hard, hardId) = (pair.A, pair.B, pair.IdB);

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
        await using var pair = await StartPairAsync(lab, l => l.AddHomeAsync(NatKind.Symmetric), l => l.AddHomeAsync(NatKind.Symmetric));
        var (a, b, bId) = (pair.A, pair.B, pair.IdB);

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
        await using var pair = await StartPairAsync(lab, l => l.AddHomeAsync(NatKind.EndpointIndependent), l => l.AddHomeAsync(NatKind.EndpointIndependent), argsB: ["--private"]);
        var (a, bHost, hiddenId) = (pair.A, pair.HostB, pair.IdB);

        var looked = Json(await Ok(a.RunAsync("peer", "lookup", hiddenId, "--json")));
        Assert.DoesNotContain(bHost.PublicAddress, looked.ToString(), StringComparison.Ordinal);
        Assert.Equal("relayed", Json(await Ok(a.RunAsync("chat", "send", hiddenId, "hello, private", "--json"))).GetProperty("status").GetString());
        var link = Assert.Single(Json(await Ok(a.RunAsync("status", "--json"))).GetProperty("links").EnumerateArray());
        Assert.Equal("relayed", link.GetProperty("path").GetString());
        Assert.Contains("private mode", link.GetProperty("why").GetString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// A supernode on a public host of <paramref name="lab"/> and two peers on the hosts
    /// <paramref name="a"/> and <paramref name="b"/> make, each in session and (unless private) dialed back.
    /// </summary>
    private async Task<LabPair> StartPairAsync(NatLab lab, Func<NatLab, Task<LabHost>> a, Func<NatLab, Task<LabHost>> b, string[]? argsB = null, IReadOnlyDictionary<string, string>? variables = null)
    {
        var supernodeHost = await lab.AddPublicAsync();
        var (hostA, hostB) = (await a(lab), await b(lab));
        var pair = new LabPair { HostA = hostA, HostB = hostB, Node = await SupernodeProcess.StartInLabAsync(supernodeHost, _temp.Sub("sn")) };
        try
        {
            pair.A = await InitAsync(hostA, "a", "Ann", variables);
            pair.B = await InitAsync(hostB, "b", "Ben", variables);
            pair.DaemonA = await DaemonProcess.StartAsync(pair.A, "--supernode", pair.Node.GrpcUrl, "--listen", "0.0.0.0:0");
            pair.DaemonB = await DaemonProcess.StartAsync(pair.B, ["--supernode", pair.Node.GrpcUrl, .. argsB is ["--private", ..] ? [] : (string[])["--listen", "0.0.0.0:0"], .. argsB ?? []]);
            pair.StatusA = await DialedBackAsync(pair.A);
            pair.StatusB = argsB is ["--private", ..] ? Json(await Ok(pair.B.RunAsync("status", "--json"))) : await DialedBackAsync(pair.B);
            return pair;
        }
        catch
        {
            await pair.DisposeAsync();
            throw;
        }
    }

    private async Task<CliRunner> InitAsync(LabHost host, string home, string name, IReadOnlyDictionary<string, string>? variables)
    {
        var user = new CliRunner(_temp.Sub(home)) { Namespace = host.Namespace, Variables = variables ?? new Dictionary<string, string>() };
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

}

/// <summary>A supernode and two peers in a NAT lab; disposing stops the daemons and the supernode (the lab is the test's).</summary>
internal sealed class LabPair : IAsyncDisposable
{
    public required LabHost HostA { get; init; }

    public required LabHost HostB { get; init; }

    public required SupernodeProcess Node { get; init; }

    public CliRunner A { get; set; } = null!;

    public CliRunner B { get; set; } = null!;

    public DaemonProcess? DaemonA { get; set; }

    public DaemonProcess? DaemonB { get; set; }

    public JsonElement StatusA { get; set; }

    public JsonElement StatusB { get; set; }

    public string IdA => StatusA.GetProperty("peerId").GetString()!;

    public string IdB => StatusB.GetProperty("peerId").GetString()!;

    public async ValueTask DisposeAsync()
    {
        if (DaemonA is not null)
        {
            await DaemonA.DisposeAsync();
        }

        if (DaemonB is not null)
        {
            await DaemonB.DisposeAsync();
        }

        await Node.DisposeAsync();
    }
}

/// <summary>NAT lab tests run one at a time (each builds its own namespaces, but they share the CPU with their daemons).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NatLabGroup
{
    public const string Name = "NAT lab";
}
