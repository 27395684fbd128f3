using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Federation;
using Hybrid.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// How many peer clusters a cluster learns from introductions: a learned peer that had to be
/// dropped gives its place back (a hostile introducer cannot fill the places with clusters that
/// get struck out) but is never learned again, still counts against its introducer, and what is
/// remembered of learned peers stays bounded however many come and go.
/// </summary>
public sealed class FederationLearningLimitsTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly FederationIdentity _identity;
    private readonly FederationPeers _peers;

    public FederationLearningLimitsTests()
    {
        var options = new SupernodeOptions { DataDir = _temp.Path, Federation = new FederationOptions { MaxLearnedPeers = 2, MaxLearnedPerIntroducer = 2 } };
        _identity = new FederationIdentity(options);
        _peers = new FederationPeers(options, _identity, new Ops.SupernodeMetrics(), NullLogger<FederationPeers>.Instance);
    }

    public void Dispose()
    {
        _peers.Dispose();
        _identity.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public void ADroppedLearnedPeerFreesItsPlaceButIsNotLearnedAgainAndStillCountsAgainstItsIntroducer()
    {
        var first = Introducer();
        var introduced = Enumerable.Range(0, 3).Select(_ => Stranger()).ToList();
        Assert.Equal(2, _peers.Learn(first, introduced));
        var learned = Learned();
        Assert.Equal(2, learned.Count);

        // Both places taken: the third is not learned, from this introducer or another.
        Assert.Equal(0, _peers.Learn(Introducer(), [introduced[2]]));

        learned[0].DroppedBecause = "3 strikes, the last: a forged listing";
        Assert.Equal(0, _peers.Learn(Introducer(), [new KnownCluster { ClusterId = learned[0].Pin!.Value.ToString(), Url = learned[0].Url }]));
        Assert.Equal(1, _peers.Learn(Introducer(), [introduced[2]]));
        Assert.Equal(2, Learned().Count(p => p.DroppedBecause is null));

        // The first introducer has had its two introductions taken (both since dropped): no more from it.
        Learned().ForEach(p => p.DroppedBecause = "blocked");
        Assert.Equal(0, _peers.Learn(first, [Stranger()]));
        Assert.Equal(1, _peers.Learn(Introducer(), [Stranger()]));
    }

    [Fact]
    public void LearnedPeersRememberedStayBoundedHoweverManyAreDropped()
    {
        for (var round = 0; round < 40; round++)
        {
            _peers.Learn(Introducer(), [Stranger(), Stranger()]);
            Learned().ForEach(p => p.DroppedBecause ??= "3 strikes");
            Assert.True(Learned().Count <= 2 * FederationPeers.RememberedPerPlace, $"{Learned().Count} learned peers remembered after {round + 1} rounds of introductions all dropped");
        }

        Assert.Equal(2 * FederationPeers.RememberedPerPlace, Learned().Count);
    }

    private List<PeerCluster> Learned() => [.. _peers.All.Where(p => p.LearnedFrom is not null)];

    private static PeerCluster Introducer()
    {
        using var key = PeerIdentity.Generate();
        return new PeerCluster("https://introducer.example", key.Id) { ClusterId = key.Id };
    }

    private static KnownCluster Stranger()
    {
        using var key = PeerIdentity.Generate();
        return new KnownCluster { ClusterId = key.Id.ToString(), Url = $"https://{key.Id.ToString()[..12].ToLowerInvariant()}.example" };
    }
}
