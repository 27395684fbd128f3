using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Sessions;
using Hybrid.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Dial-back: a supernode verifies the endpoints a peer announces by connecting to them and running
/// a TLS handshake pinned to the peer's key; only verified endpoints are offered as reachable.
/// </summary>
public sealed class ReachabilityTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task AReachableDaemonIsVerifiedAndAnAddressItDoesNotAnswerAtIsNeverOfferedAsReachable()
    {
        var sam = new CliRunner(_temp.Sub("sam"));
        Assert.Equal(0, (await sam.RunAsync("init", "--name", "Sam")).ExitCode);
        await using var daemon = await DaemonProcess.StartAsync(sam, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var status = await Eventually.ReturnsAsync(
            async () => JsonDocument.Parse((await sam.RunAsync("status", "--json")).Stdout).RootElement.Clone(),
            s => s.GetProperty("reachability").ValueKind == JsonValueKind.Object,
            Deadline,
            "the daemon's status to show the supernode's dial-back");
        Assert.True(status.GetProperty("reachability").GetProperty("reachable").GetBoolean(), status.ToString());
        var samEndpoint = Assert.Single(status.GetProperty("endpoints").EnumerateArray()).GetString()!;
        Assert.StartsWith("127.0.0.1:", status.GetProperty("observedAddress").GetString(), StringComparison.Ordinal);
        var samId = status.GetProperty("peerId").GetString()!;
        var samInfo = await fixture.Node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = samId });
        Assert.Contains(samEndpoint, samInfo.Endpoints.Select(e => e.Url));

        // Mallory announces Sam's address (another key answers there) and a port nobody listens on.
        using var mallory = PeerIdentity.Generate();
        var dead = $"https://127.0.0.1:{Ports.Free()}";
        await using var connection = new SupernodeConnection(mallory, new SupernodeConnectionOptions
        {
            Seeds = [fixture.Node.GrpcUrl],
            DisplayName = "Mallory",
            Endpoints = [samEndpoint, dead],
        });
        var reported = new TaskCompletionSource<PeerReachability>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.ReachabilityChanged += (_, r) => reported.TrySetResult(r);
        connection.Start();
        var report = await reported.Task.WaitAsync(Deadline);

        Assert.False(report.Reachable);
        Assert.Contains("another key answered", Assert.Single(report.Checks, c => c.Url == samEndpoint).Reason, StringComparison.Ordinal);
        Assert.Contains("nothing listens there", Assert.Single(report.Checks, c => c.Url == dead).Reason, StringComparison.Ordinal);
        var malloryInfo = await fixture.Node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = mallory.Id.ToString() });
        Assert.Empty(malloryInfo.Endpoints);
        Assert.Contains(samEndpoint, malloryInfo.Candidates.Select(c => c.Url));
        Assert.Contains(dead, malloryInfo.Candidates.Select(c => c.Url));
    }

    [Theory]
    [InlineData("203.0.113.5", "198.51.100.7", true)]      // a global address, whoever asks
    [InlineData("127.0.0.1", "198.51.100.7", false)]       // this machine's loopback, for a remote peer
    [InlineData("127.0.0.1", "127.0.0.1", true)]           // a peer on this machine
    [InlineData("10.1.2.3", "198.51.100.7", false)]        // a LAN address, for a peer outside that LAN
    [InlineData("192.168.1.20", "192.168.1.9", true)]      // a peer on the same private network
    [InlineData("172.20.0.4", "127.0.0.1", true)]          // this machine's own private address, for a peer on it
    [InlineData("100.64.1.1", "203.0.113.1", false)]       // carrier-grade NAT space
    [InlineData("169.254.10.10", "169.254.10.11", false)]  // link-local: never
    [InlineData("224.0.0.251", "198.51.100.7", false)]     // multicast: never
    [InlineData("0.0.0.0", "127.0.0.1", false)]            // unspecified: never
    [InlineData("::1", "2001:db8::7", false)]
    [InlineData("fe80::1", "fe80::2", false)]
    [InlineData("2001:db8::5", "2001:db8::7", true)]
    [InlineData("::ffff:127.0.0.1", "::ffff:198.51.100.7", false)]
    public void ASupernodeNeverDialsAnAddressNarrowerThanTheSessionCameFrom(string target, string sessionFrom, bool dialed) =>
        Assert.Equal(dialed, DialBack.MayDial(IPAddress.Parse(target), IPAddress.Parse(sessionFrom)));

    [Fact]
    public async Task FreshKeysCannotAimTheSupernodeAtOneAddressMoreThanItsBudget()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepted = 0;
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var socket = await listener.AcceptSocketAsync(stop.Token);
                Interlocked.Increment(ref accepted);
            }
        });
        var options = new SupernodeOptions { DialBacksPerAddressPerMinute = 2, DialBackTimeout = TimeSpan.FromSeconds(2) };
        using var dialBack = new DialBack(options, new SupernodeMetrics(), NullLogger<DialBack>.Instance);
        var url = $"https://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";

        var results = new List<EndpointResult>();
        for (var i = 0; i < 6; i++)
        {
            using var fresh = PeerIdentity.Generate();
            Assert.True(dialBack.TryStartRound(fresh.Id));
            results.AddRange(await dialBack.CheckAsync(fresh.Id, IPAddress.Loopback, [url], CancellationToken.None));
        }

        Assert.All(results, r => Assert.False(r.Reachable));
        Assert.Equal(4, results.Count(r => r.Reason.Contains("dialed back its 2 times this minute", StringComparison.Ordinal)));
        await stop.CancelAsync();
        listener.Stop();
        await accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        Assert.Equal(2, accepted);
    }

    [Fact]
    public void OnePeerGetsAFewDialBackRoundsAMinute()
    {
        using var dialBack = new DialBack(new SupernodeOptions { DialBackRoundsPerPeerPerMinute = 3 }, new SupernodeMetrics(), NullLogger<DialBack>.Instance);
        using var peer = PeerIdentity.Generate();
        using var other = PeerIdentity.Generate();
        Assert.Equal([true, true, true, false, false], Enumerable.Range(0, 5).Select(_ => dialBack.TryStartRound(peer.Id)).ToArray());
        Assert.True(dialBack.TryStartRound(other.Id));
    }
}
