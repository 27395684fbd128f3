using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A supernode runs a bounded number of session handshakes at once; the rest are refused at once
/// with a status a client acts on (try another supernode, or back off), and the refused peers get
/// their sessions when they try again.
/// </summary>
public sealed class HandshakeLimitTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task TheApiListenerKeepsABacklogForAHerdOfPeersDiallingAtOnce()
    {
        // When a supernode dies its peers dial the survivors within milliseconds; Kestrel's default
        // backlog (512) dropped the rest of such a burst, and each dropped peer waited a second or
        // more for its kernel to dial again. The kernel caps any backlog at net.core.somaxconn.
        var cap = int.Parse(await File.ReadAllTextAsync("/proc/sys/net/core/somaxconn"), System.Globalization.CultureInfo.InvariantCulture);
        await using var node = await SupernodeProcess.StartAsync(_temp.Sub("default"));
        Assert.Equal(Math.Min(4096, cap), await ListenBacklogAsync(new Uri(node.GrpcUrl).Port));

        await using var configured = await SupernodeProcess.StartAsync(_temp.Sub("configured"), "--Supernode:ListenBacklog=1000");
        Assert.Equal(Math.Min(1000, cap), await ListenBacklogAsync(new Uri(configured.GrpcUrl).Port));
    }

    /// <summary>The backlog of the socket listening on <paramref name="port"/>, as <c>ss</c> shows it (Send-Q of a listening socket).</summary>
    private static async Task<int> ListenBacklogAsync(int port)
    {
        var ss = new[] { "/usr/bin/ss", "/bin/ss", "/usr/sbin/ss", "/sbin/ss" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("ss (iproute2) is not installed; scripts/install-deps.sh installs it");
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(ss, ["-Hltn", $"sport = :{port}"]) { RedirectStandardOutput = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single();
        return int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task HellosBeyondTheHandshakeLimitAreRefusedAsBusyAtOnceAndThosePeersGetInWhenTheyTryAgain()
    {
        await using var node = await SupernodeProcess.StartAsync(_temp.Sub("sn"), "--Supernode:MaxHandshakesInProgress=1");
        var identities = Enumerable.Range(0, 24).Select(_ => PeerIdentity.Generate()).ToList();
        var sessions = new List<RawSession>();
        try
        {
            foreach (var identity in identities)
            {
                sessions.Add(await RawSession.OpenAsync(node.Client));
            }

            // Every hello sent before any answer is read: the handshakes overlap.
            await Task.WhenAll(sessions.Select((s, i) => s.SendHelloAsync(RawSession.Proof(identities[i], s.Challenge), RawSession.Profile(identities[i], $"peer {i}", 1))));
            var answers = await Task.WhenAll(sessions.Select(async s =>
            {
                try
                {
                    return (await s.ReadAsync()).KindCase.ToString();
                }
                catch (RpcException ex)
                {
                    return $"{ex.StatusCode}: {ex.Status.Detail}";
                }
            }));

            var busy = answers.Where(a => a.StartsWith("Unavailable", StringComparison.Ordinal)).ToList();
            Assert.Contains(nameof(SessionServerMessage.KindOneofCase.Welcome), answers);
            Assert.NotEmpty(busy);
            Assert.All(busy, a => Assert.Contains("opening as many sessions as it can at once", a, StringComparison.Ordinal));
            Assert.All(answers, a => Assert.True(a == nameof(SessionServerMessage.KindOneofCase.Welcome) || a.StartsWith("Unavailable", StringComparison.Ordinal), a));
            Assert.Equal(busy.Count, await node.MetricAsync("hybrid_sessions_refused_total{reason=\"busy\"}"));

            // Tried again one at a time, each refused peer gets its session.
            foreach (var (answer, i) in answers.Select((a, i) => (a, i)).Where(x => x.a != nameof(SessionServerMessage.KindOneofCase.Welcome)))
            {
                using var again = await RawSession.OpenAsync(node.Client);
                await again.SendHelloAsync(RawSession.Proof(identities[i], again.Challenge), RawSession.Profile(identities[i], $"peer {i}", 1));
                Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await again.ReadAsync()).KindCase);
            }
        }
        finally
        {
            sessions.ForEach(s => s.Dispose());
            identities.ForEach(i => i.Dispose());
        }
    }
}
