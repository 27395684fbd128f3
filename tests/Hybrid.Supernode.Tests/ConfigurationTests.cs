using Hybrid.Supernode.Configuration;
using Hybrid.Testing;
using Microsoft.Extensions.Configuration;

namespace Hybrid.Supernode.Tests;

public sealed class ConfigurationTests
{
    private static SupernodeOptions Load(params (string Key, string Value)[] settings) =>
        SupernodeConfiguration.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build());

    private static string Refused(params (string Key, string Value)[] settings) =>
        Assert.Throws<SupernodeConfigurationException>(() => Load(settings)).Message;

    [Fact]
    public void NoSettingsMeansAnEmbeddedSupernodeWithLocalDefaults()
    {
        var options = Load();

        Assert.False(options.IsCluster);
        Assert.Equal(11111, options.SiloPort);
        Assert.Equal(30000, options.GatewayPort);
        Assert.False(string.IsNullOrWhiteSpace(options.DataDir));
    }

    [Fact]
    public void TheTestHarnessNeverHandsOutAnEmbeddedSupernodesOwnPorts()
    {
        // An API port equal to the embedded silo's own port made a supernode fail to start beside it.
        var options = Load();
        Assert.Contains(options.SiloPort, Ports.Reserved);
        Assert.Contains(options.GatewayPort, Ports.Reserved);
    }

    [Fact]
    public void ARedisConnectionStringMeansClusterMode()
    {
        var options = Load(("Supernode:Redis", "127.0.0.1:6379,password=secret"), ("Supernode:ClusterId", "eu-1"), ("Supernode:SiloPort", "12000"));

        Assert.True(options.IsCluster);
        Assert.Equal("eu-1", options.ClusterId);
        Assert.Equal(12000, options.SiloPort);
    }

    [Fact]
    public void TimeSpansBindFromTheirTextForm()
    {
        var options = Load(("Supernode:HeartbeatInterval", "00:00:00.500"), ("Supernode:SessionTimeout", "00:00:03"));

        Assert.Equal(TimeSpan.FromMilliseconds(500), options.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(3), options.SessionTimeout);
    }

    [Fact]
    public void ANonNumericPortNamesTheSetting() =>
        Assert.Contains("Supernode:SiloPort", Refused(("Supernode:SiloPort", "eleven")), StringComparison.Ordinal);

    [Fact]
    public void AMisspelledSettingIsRefusedNotIgnored() =>
        Assert.Contains("SiloPrt", Refused(("Supernode:SiloPrt", "12000")), StringComparison.Ordinal);

    [Theory]
    [InlineData("Supernode:SiloPort", "0", "Supernode:SiloPort must be between 1 and 65535")]
    [InlineData("Supernode:GatewayPort", "70000", "Supernode:GatewayPort must be between 1 and 65535")]
    [InlineData("Supernode:AdvertisedUrl", "ftp://example.org", "Supernode:AdvertisedUrl")]
    [InlineData("Supernode:SiloAddress", "no-such-host.invalid", "Supernode:SiloAddress")]
    [InlineData("Supernode:ClusterId", "has space", "Supernode:ClusterId")]
    [InlineData("Supernode:MaxMessageBytes", "10", "Supernode:MaxMessageBytes")]
    [InlineData("Supernode:SessionTimeout", "00:00:01", "must be longer than Supernode:HeartbeatInterval")]
    [InlineData("Supernode:PresenceLease", "00:00:20", "Supernode:PresenceLease (00:00:20) must be at least Supernode:SessionTimeout")]
    [InlineData("Supernode:MaxHandshakesInProgress", "0", "Supernode:MaxHandshakesInProgress must be at least 1")]
    [InlineData("Supernode:ListenBacklog", "0", "Supernode:ListenBacklog must be between 1 and 65535 (got 0)")]
    [InlineData("Supernode:SearchPageCacheBytes", "-1", "Supernode:SearchPageCacheBytes must be between 0 (none kept) and 1073741824 (got -1)")]
    [InlineData("Supernode:SearchRefreshInterval", "00:02:00", "Supernode:SearchRefreshInterval must be between 00:00:00 (each search sees every acknowledged write) and 00:01:00 (got 00:02:00)")]
    [InlineData("Supernode:TrustedProxies", "10.0.0.0/99", "Supernode:TrustedProxies")]
    [InlineData("Supernode:PublicUrls", "hybrid.example.org", "Supernode:PublicUrls")]
    [InlineData("Supernode:PublicTlsKeys", "not-a-hash", "Supernode:PublicTlsKeys")]
    [InlineData("Supernode:ReferenceRates", "USD=free", "Supernode:ReferenceRates")]
    [InlineData("Supernode:IdentityWorkBits", "40", "Supernode:IdentityWorkBits")]
    [InlineData("Supernode:MailboxSenderShare", "1.5", "Supernode:MailboxSenderShare")]
    [InlineData("Supernode:MaxListingsPerSeller", "0", "Supernode:MaxListingsPerSeller")]
    [InlineData("Supernode:SynonymsFile", "/no/such/synonyms.txt", "Supernode:SynonymsFile names /no/such/synonyms.txt, which does not exist")]
    [InlineData("Supernode:RelayPort", "70000", "Supernode:RelayPort must be -1 (off), 0 (any free port) or a port")]
    [InlineData("Supernode:RelaySpliceWait", "00:00:00", "Supernode:RelaySpliceWait positive")]
    [InlineData("Supernode:Federation:Peers", "market.example.org", "Supernode:Federation:Peers has 'market.example.org'")]
    [InlineData("Supernode:Federation:Blocked", "not-an-id", "Supernode:Federation:Blocked has 'not-an-id', which is not a cluster id")]
    [InlineData("Supernode:Federation:Interval", "00:00:00", "Supernode:Federation:Interval")]
    [InlineData("Supernode:Federation:MaxStrikes", "0", "Supernode:Federation:MaxStrikes")]
    [InlineData("Supernode:Federation:MaxReviewsPerRound", "0", "Supernode:Federation:MaxReviewsPerRound")]
    [InlineData("Supernode:Federation:Peers", "not-an-id@https://a.example.org:7443", "Supernode:Federation:Peers has 'not-an-id@https://a.example.org:7443'")]
    [InlineData("Supernode:Federation:Listen", "federation.example.org", "Supernode:Federation:Listen is 'federation.example.org'; give IP:PORT")]
    [InlineData("Supernode:Federation:CallsPerSecond", "0", "Supernode:Federation:CallsPerSecond")]
    public void AnOutOfRangeValueIsRefusedWithItsReason(string key, string value, string reason) =>
        Assert.Contains(reason, Refused((key, value)), StringComparison.Ordinal);

    [Fact]
    public void EqualSiloAndGatewayPortsAreRefused() =>
        Assert.Contains("must differ", Refused(("Supernode:SiloPort", "12000"), ("Supernode:GatewayPort", "12000")), StringComparison.Ordinal);

    [Fact]
    public void EveryProblemIsReportedInOneLine()
    {
        var message = Refused(("Supernode:SiloPort", "0"), ("Supernode:ClusterId", "bad id!"));

        Assert.Contains("SiloPort", message, StringComparison.Ordinal);
        Assert.Contains("ClusterId", message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public async Task ASupernodeWithBadConfigurationExitsAtOnceWithOneClearLine()
    {
        using var temp = new TempDir();
        await using var node = SupernodeProcess.Launch(temp.Sub("data"), "--Supernode:SiloPort=eleven");

        var exitCode = await node.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, exitCode);
        var lines = node.Output.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("hybrid-supernode: configuration error:", line, StringComparison.Ordinal);
        Assert.Contains("Supernode:SiloPort", line, StringComparison.Ordinal);
    }
}
