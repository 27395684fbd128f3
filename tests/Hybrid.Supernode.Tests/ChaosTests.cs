using Hybrid.Testing.Chaos;
using Xunit.Abstractions;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// The chaos run, short and seeded (the load runner's <c>chaos</c> scenario runs it long): writes
/// through random supernodes while supernodes are killed (-9) and restarted, one is paused past
/// failure detection, and Redis is killed and restarted; every acknowledged write is then read
/// back through every supernode. Nothing may be lost or stale, and no derived view may disagree.
/// </summary>
public sealed class ChaosTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AClusterUnderKillsPausesAndARedisRestartLosesNothingAcknowledged()
    {
        var report = await ChaosRun.RunAsync(
            new ChaosSettings
            {
                Supernodes = 3,
                Writers = 4,
                Duration = TimeSpan.FromSeconds(40),
                FaultEvery = TimeSpan.FromSeconds(4),
                PauseFor = TimeSpan.FromSeconds(8),
                Seed = 7,
                Log = output.WriteLine,
            },
            CancellationToken.None);

        AssertClean(report, expectedFaults: ["kill", "paused", "redis-server"]);
    }

    [Fact]
    public async Task AnEmbeddedSupernodeKilledWhileWritingLosesNothingAcknowledged()
    {
        var report = await ChaosRun.RunAsync(
            new ChaosSettings { Embedded = true, Writers = 4, Duration = TimeSpan.FromSeconds(15), FaultEvery = TimeSpan.FromSeconds(4), Seed = 7, Log = output.WriteLine },
            CancellationToken.None);

        AssertClean(report, expectedFaults: ["kill"]);
    }

    private void AssertClean(ChaosReport report, string[] expectedFaults)
    {
        output.WriteLine($"acknowledged {report.Acknowledged} ({report.ListingsAcknowledged} listings, {report.ReviewsAcknowledged} reviews, {report.RepliesAcknowledged} replies, {report.MailAcknowledged} mail deposits); faults: {string.Join("; ", report.Faults)}; stopped by themselves: {(report.SelfExits.Count == 0 ? "none" : string.Join("; ", report.SelfExits))}");
        Assert.True(
            report.ListingsAcknowledged > 100 && report.ReviewsAcknowledged > 50 && report.MailAcknowledged > 10,
            $"the run wrote too little to mean anything: {report.ListingsAcknowledged} listings, {report.ReviewsAcknowledged} reviews, {report.MailAcknowledged} mail deposits");
        foreach (var fault in expectedFaults)
        {
            Assert.Contains(report.Faults, f => f.Contains(fault, StringComparison.Ordinal));
        }

        Assert.True(report.Clean, string.Join(Environment.NewLine, report.Lost.Concat(report.Stale).Concat(report.Disagreements).Take(30)));
    }
}
