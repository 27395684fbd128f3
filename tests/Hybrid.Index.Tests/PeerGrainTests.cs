using Google.Protobuf;
using Hybrid.Index.Directory;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Orleans.Core.Internal;

namespace Hybrid.Index.Tests;

/// <summary>
/// Opening a session writes the peer's durable record only when something in it changes: a new
/// identity, a newer profile, or a last-seen time over a minute old. A returning peer with nothing
/// new (every peer of a restarted supernode reconnecting at once) costs no storage write.
/// </summary>
public sealed class PeerGrainTests(GrainHost host) : IClassFixture<GrainHost>
{
    [Fact]
    public async Task AReturningPeerWithNothingNewOpensItsSessionWithoutAStorageWrite()
    {
        using var identity = PeerIdentity.Generate();
        var grain = host.Grains.GetGrain<IPeerGrain>(identity.Id.ToString());
        var first = Profile(identity, "Alice", 1);
        Assert.True((await grain.OpenSession(Claim(identity, first))).Succeeded);

        // The peer comes back (a fresh activation, as after a supernode restart) with the same profile.
        await grain.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        FaultyStores.FailNextWrites("peer");
        var again = await grain.OpenSession(Claim(identity, first));
        Assert.True(again.Succeeded, again.Message);
        var snapshot = await grain.Describe();
        Assert.True(snapshot is { Online: true });

        // A newer profile is written: while the store refuses the write, the session is not opened on it.
        var second = Profile(identity, "Alice B.", 2);
        FaultyStores.FailNextWrites("peer");
        await Assert.ThrowsAnyAsync<Exception>(() => grain.OpenSession(Claim(identity, second)));
        Assert.Equal(IndexOutcome.Applied, (await grain.OpenSession(Claim(identity, second))).Outcome);
        await grain.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        Assert.Equal(second.Envelope, (await grain.Describe())!.ProfileEnvelope);
    }

    private static SessionClaim Claim(PeerIdentity identity, SignedProfile profile) =>
        new(Guid.NewGuid(), identity.PublicKey, profile, [], "http://supernode.test", TimeSpan.FromMinutes(1));

    private static SignedProfile Profile(PeerIdentity identity, string name, ulong version)
    {
        var now = DateTimeOffset.UtcNow;
        var envelope = SignedEnvelopes.Sign(identity, EnvelopeKinds.Profile, version, new PeerProfile { DisplayName = name }, now, now.AddDays(1));
        return new SignedProfile(envelope.ToByteArray(), envelope.Payload.ToByteArray(), version);
    }
}

/// <summary>
/// A peer's presence lasts while the supernode holding its session lives: held sessions renew it
/// rarely (a long lease), so a supernode that dies must not leave its peers online until then.
/// Two silos: the peer's grain on one, the session held by the other, which then leaves.
/// </summary>
public sealed class PresenceHolderTests
{
    [Fact]
    public async Task APeerWhoseSupernodeLeftShowsOfflineLongBeforeItsLeaseEnds()
    {
        var builder = new Orleans.TestingHost.TestClusterBuilder(2);
        builder.AddSiloBuilderConfigurator<GrainHost.Configurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        try
        {
            var holder = cluster.SecondarySilos[0];
            var management = cluster.Client.GetGrain<IManagementGrain>(0);
            var identities = new List<PeerIdentity>();
            try
            {
                // The peer's grain must live on the silo that stays (else its presence would go with the holder anyway).
                IPeerGrain? grain = null;
                PeerIdentity? peer = null;
                for (var attempt = 0; attempt < 40 && grain is null; attempt++)
                {
                    var identity = PeerIdentity.Generate();
                    identities.Add(identity);
                    var candidate = cluster.Client.GetGrain<IPeerGrain>(identity.Id.ToString());
                    await candidate.Describe();
                    if (cluster.Primary!.SiloAddress.Equals(await management.GetActivationAddress(candidate)))
                    {
                        (grain, peer) = (candidate, identity);
                    }
                }

                Assert.True(grain is not null, "no peer grain was placed on the primary silo in 40 tries");
                var claim = new SessionClaim(Guid.NewGuid(), peer!.PublicKey, null, [], "http://holder.test", TimeSpan.FromHours(1), Holder: holder.SiloAddress);
                Assert.True((await grain.OpenSession(claim)).Succeeded);
                Assert.True((await grain.Describe())!.Online);

                await cluster.StopSiloAsync(holder);
                await Eventually.TrueAsync(
                    async () => (await grain.Describe())!.Online is false,
                    TimeSpan.FromSeconds(30),
                    "the peer to show offline once the silo holding its session has left");
                Assert.Null((await grain.Describe())!.SupernodeUrl);
            }
            finally
            {
                identities.ForEach(i => i.Dispose());
            }
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }
}
