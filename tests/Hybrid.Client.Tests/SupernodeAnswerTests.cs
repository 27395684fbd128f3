using Google.Protobuf;
using Hybrid.Client.Network;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Tests;

/// <summary>What the client accepts from a supernode's look-up, which it trusts for availability only.</summary>
public sealed class SupernodeAnswerTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    private readonly PeerIdentity _peer = PeerIdentity.Generate();
    private readonly PeerIdentity _supernode = PeerIdentity.Generate();

    public void Dispose()
    {
        _peer.Dispose();
        _supernode.Dispose();
    }

    private PeerInfo Honest(string name = "Erin", TimeSpan? profileLifetime = null) => new()
    {
        PeerId = _peer.Id.ToString(),
        PublicKey = ByteString.CopyFrom(_peer.PublicKey),
        Profile = SignedEnvelopes.Sign(_peer, EnvelopeKinds.Profile, 1, new PeerProfile { DisplayName = name }, Now.AddHours(-1), Now + (profileLifetime ?? TimeSpan.FromDays(1))),
        DisplayName = name,
        Online = true,
    };

    [Fact]
    public void AnHonestAnswerPassesWithTheSignedName()
    {
        var answer = Honest();
        answer.DisplayName = "Shown by the supernode";

        var checkedInfo = SupernodeAnswers.CheckPeer(_peer.Id, answer, Now);

        Assert.Equal(_peer.PublicKey, checkedInfo.PublicKey.ToByteArray());
        Assert.Equal("Erin", checkedInfo.DisplayName);
    }

    [Fact]
    public void ASubstitutedKeyIsRefused()
    {
        var answer = Honest();
        answer.PublicKey = ByteString.CopyFrom(_supernode.PublicKey);

        var forged = Assert.Throws<ForgedAnswerException>(() => SupernodeAnswers.CheckPeer(_peer.Id, answer, Now));

        Assert.Contains("does not belong", forged.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAnswerAboutAnotherPeerIsRefused()
    {
        var answer = Honest();
        answer.PeerId = _supernode.Id.ToString();
        answer.PublicKey = ByteString.CopyFrom(_supernode.PublicKey);

        Assert.Throws<ForgedAnswerException>(() => SupernodeAnswers.CheckPeer(_peer.Id, answer, Now));
    }

    [Fact]
    public void AProfileSignedByAnotherKeyIsRefused()
    {
        var answer = Honest();
        answer.Profile = SignedEnvelopes.Sign(_supernode, EnvelopeKinds.Profile, 2, new PeerProfile { DisplayName = "Pay me here" }, Now, Now.AddDays(1));

        Assert.Throws<ForgedAnswerException>(() => SupernodeAnswers.CheckPeer(_peer.Id, answer, Now));
    }

    [Fact]
    public void AnExpiredProfileIsDroppedNotBelieved()
    {
        var answer = Honest(profileLifetime: TimeSpan.FromMinutes(-1));

        var checkedInfo = SupernodeAnswers.CheckPeer(_peer.Id, answer, Now);

        Assert.Null(checkedInfo.Profile);
        Assert.Equal(string.Empty, checkedInfo.DisplayName);
    }
}
