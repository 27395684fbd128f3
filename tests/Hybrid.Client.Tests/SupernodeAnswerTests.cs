using Google.Protobuf;
using Hybrid.Client.Connectivity;
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

/// <summary>Reviews shown to a buyer are the ones their authors signed, with receipts, about that seller.</summary>
public sealed class ReviewAnswerTests : IDisposable
{
    private readonly PeerIdentity _buyer = PeerIdentity.Generate();
    private readonly PeerIdentity _seller = PeerIdentity.Generate();
    private readonly PeerIdentity _other = PeerIdentity.Generate();

    public void Dispose()
    {
        _buyer.Dispose();
        _seller.Dispose();
        _other.Dispose();
    }

    private ReviewRecord Record(uint stars)
    {
        var envelope = Hybrid.Testing.Trades.Review(_buyer, _seller.Id, Hybrid.Testing.Trades.Complete(_buyer, _seller), stars, "slow shipping");
        var verified = Hybrid.Protocol.Reputation.Reviews.Verify(envelope, DateTimeOffset.UtcNow);
        return new ReviewRecord { ReviewId = verified.ReviewId, Reviewer = _buyer.Id.ToString(), Reviewed = _seller.Id.ToString(), Stars = stars, Text = "slow shipping", Envelope = envelope };
    }

    [Fact]
    public void TheShownStarsAndTextAreTheSignedOnes()
    {
        var record = Record(2);
        record.Stars = 5;
        record.Text = "Perfect seller";

        var page = SupernodeAnswers.CheckReviews(_seller.Id, new ReviewPage { Reviews = { record } }, DateTimeOffset.UtcNow);

        Assert.Equal((2u, "slow shipping"), (page.Reviews[0].Stars, page.Reviews[0].Text));
    }

    [Fact]
    public void AReviewOfAnotherPeerOrAForgedReplyIsRefused()
    {
        Assert.Throws<ForgedAnswerException>(() => SupernodeAnswers.CheckReviews(_other.Id, new ReviewPage { Reviews = { Record(1) } }, DateTimeOffset.UtcNow));

        var record = Record(1);
        var now = DateTimeOffset.UtcNow;
        // A "reply" the seller never wrote, signed by someone else.
        record.Reply = Hybrid.Protocol.Reputation.Reviews.SignReply(_other, record.ReviewId, "The buyer lies", 1, now);
        Assert.Throws<ForgedAnswerException>(() => SupernodeAnswers.CheckReviews(_seller.Id, new ReviewPage { Reviews = { record } }, now));
    }
}
