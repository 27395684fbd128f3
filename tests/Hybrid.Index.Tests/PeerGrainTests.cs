using Google.Protobuf;
using Hybrid.Index.Directory;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
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
