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
    }

    private async Task<CliRunner> InitAsync(LabHost host, string home, string name)
    {
        var user = new CliRunner(_temp.Sub(home)) { Namespace = host.Namespace };
        await Ok(user.RunAsync("init", "--name", name));
        return user;
    }

    private static async Task<JsonElement> DialedBackAsync(CliRunner user) =>
        await Eventually.ReturnsAsync(
            async () => Json(await Ok(user.RunAsync("status", "--json"))),
            s => s.GetProperty("reachability").ValueKind == JsonValueKind.Object,
            Deadline,
            $"the supernode's dial-back report in the status of {user.Home}");

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
