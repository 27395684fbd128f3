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
public sealed class FederationLearningLimitsTests : IAsyncLifetime, IDisposable
{
    private readonly TempDir _temp = new();
    private readonly FederationIdentity _identity;
    private readonly SupernodeOptions _options;
    private readonly Storage.SqliteDatabase _database;
    private readonly Storage.SqliteItemStore _store;
    private readonly FederationPeers _peers;

    public FederationLearningLimitsTests()
    {
        _options = new SupernodeOptions { DataDir = _temp.Path, Federation = new FederationOptions { MaxLearnedPeers = 2, MaxLearnedPerIntroducer = 2 } };
        _identity = new FederationIdentity(_options);
        _database = new Storage.SqliteDatabase(_temp.Sub("store.db"));
        _store = new Storage.SqliteItemStore(_database);
        _peers = Peers();
    }

    /// <summary>The peers of a supernode of this cluster (a restarted one, or another), on the cluster's store.</summary>
    private FederationPeers Peers() => new(_options, _identity, _store, new Ops.SupernodeMetrics(), NullLogger<FederationPeers>.Instance);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _peers.Dispose();
        await _database.DisposeAsync();
    }

    /// <summary>Called by xUnit after <see cref="DisposeAsync"/>.</summary>
    public void Dispose()
    {
        _identity.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task LearnedPeersAndWhyOneWasDroppedAreRecalledAfterARestartAndNothingTheStoreHoldsWidensTheLimits()
    {
        var introducer = Introducer();
        Assert.Equal(2, await _peers.LearnAndRememberAsync(introducer, [Stranger(), Stranger()]));
        var struck = Learned()[0];
        struck.DroppedBecause = "3 strikes, the last: a forged listing";
        await _peers.RememberAsync(struck);
        // Entries no introduction could have made: garbage, a private address, an unparsable id.
        await _store.PutAsync(FederationPeers.LearnedItemSet, "not-an-id", "{}"u8.ToArray());
        await _store.PutAsync(FederationPeers.LearnedItemSet, Stranger().ClusterId, System.Text.Encoding.UTF8.GetBytes($$"""{"Url":"https://10.0.0.7","LearnedFrom":"{{introducer.ClusterId}}"}"""));
        await _store.PutAsync(FederationPeers.LearnedItemSet, Stranger().ClusterId, "not json"u8.ToArray());

        using var restarted = Peers();
        Assert.Empty(restarted.All);
        await restarted.RecallLearnedAsync(CancellationToken.None);

        var recalled = restarted.All.ToDictionary(p => p.Pin!.Value.ToString(), StringComparer.Ordinal);
        Assert.Equal(Learned().Select(p => p.Pin!.Value.ToString()).Order(StringComparer.Ordinal), recalled.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(struck.DroppedBecause, recalled[struck.Pin!.Value.ToString()].DroppedBecause);
        Assert.All(restarted.All, p => Assert.Equal(introducer.ClusterId, p.LearnedFrom));
        // Recalled again (it is, every interval): nothing doubles.
        await restarted.RecallLearnedAsync(CancellationToken.None);
        Assert.Equal(2, restarted.All.Count);
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
