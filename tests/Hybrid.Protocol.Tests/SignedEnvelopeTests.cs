using Google.Protobuf;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Tests;

public sealed class SignedEnvelopeTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private readonly PeerIdentity _alice = PeerIdentity.Generate();
    private readonly PeerIdentity _mallory = PeerIdentity.Generate();

    public void Dispose()
    {
        _alice.Dispose();
        _mallory.Dispose();
    }

    private SignedEnvelope Profile(ulong version = 1, string name = "Alice", TimeSpan? lifetime = null, PeerIdentity? signer = null) =>
        SignedEnvelopes.Sign(signer ?? _alice, EnvelopeKinds.Profile, version, new PeerProfile { DisplayName = name }, Now, Now + (lifetime ?? TimeSpan.FromDays(1)));

    [Fact]
    public void AValidEnvelopeVerifiesAndNamesItsSigner()
    {
        var verified = SignedEnvelopes.Verify(Profile(), EnvelopeKinds.Profile, Now);

        Assert.Equal(_alice.Id, verified.Signer);
        Assert.Equal(1UL, verified.Version);
        Assert.Equal("Alice", verified.Body(PeerProfile.Parser).DisplayName);
    }

    [Fact]
    public void VerificationSurvivesTheWire()
    {
        var bytes = Profile().ToByteArray();

        var verified = SignedEnvelopes.Verify(SignedEnvelope.Parser.ParseFrom(bytes), EnvelopeKinds.Profile, Now);

        Assert.Equal(_alice.Id, verified.Signer);
    }

    [Fact]
    public void ATamperedPayloadIsRefused()
    {
        var envelope = Profile();
        var payload = envelope.Payload.ToByteArray();
        payload[^1] ^= 0x01;
        envelope.Payload = ByteString.CopyFrom(payload);

        var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, Now));

        Assert.Equal(EnvelopeFault.BadSignature, ex.Fault);
    }

    [Fact]
    public void ASignatureFromAnotherKeyIsRefused()
    {
        // Mallory signs and then claims Alice's key.
        var envelope = Profile(signer: _mallory);
        envelope.SignerPublicKey = ByteString.CopyFrom(_alice.PublicKey);

        var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, Now));

        Assert.Equal(EnvelopeFault.BadSignature, ex.Fault);
    }

    [Fact]
    public void AnEnvelopeFromSomeoneElseThanTheExpectedSignerIsRefused()
    {
        var ex = Assert.Throws<EnvelopeRejectedException>(() =>
            SignedEnvelopes.Verify(Profile(signer: _mallory), EnvelopeKinds.Profile, Now, expectedSigner: _alice.Id));

        Assert.Equal(EnvelopeFault.WrongSigner, ex.Fault);
    }

    [Fact]
    public void AnExpiredEnvelopeIsRefused()
    {
        var envelope = Profile(lifetime: TimeSpan.FromMinutes(1));

        var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, Now.AddMinutes(2)));

        Assert.Equal(EnvelopeFault.Expired, ex.Fault);
        Assert.Contains("expired", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnEnvelopeIssuedFarInTheFutureIsRefused()
    {
        var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(Profile(), EnvelopeKinds.Profile, Now.AddHours(-1)));

        Assert.Equal(EnvelopeFault.NotYetValid, ex.Fault);
    }

    [Fact]
    public void ASignatureNeverCrossesKinds()
    {
        var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(Profile(), EnvelopeKinds.SessionProof, Now));

        Assert.Equal(EnvelopeFault.WrongKind, ex.Fault);
    }

    [Fact]
    public void GarbageIsMalformedNotACrash()
    {
        var envelope = new SignedEnvelope
        {
            Payload = ByteString.CopyFromUtf8("not a payload"),
            SignerPublicKey = ByteString.CopyFromUtf8("not a key"),
            Signature = ByteString.CopyFrom(new byte[64]),
        };

        Assert.Equal(EnvelopeFault.Malformed, Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, Now)).Fault);
        Assert.Equal(EnvelopeFault.Malformed, Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(null, EnvelopeKinds.Profile, Now)).Fault);
    }

    [Fact]
    public void AnOlderVersionIsARefusedReplay()
    {
        var stored = SignedEnvelopes.Verify(Profile(version: 5), EnvelopeKinds.Profile, Now);
        var replay = SignedEnvelopes.Verify(Profile(version: 4, name: "Old Alice"), EnvelopeKinds.Profile, Now);

        var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.SupersedesStored(replay, stored.Version, stored.Envelope.Payload.Span));

        Assert.Equal(EnvelopeFault.Replayed, ex.Fault);
    }

    [Fact]
    public void ADifferentEnvelopeWithTheSameVersionIsARefusedReplay()
    {
        var stored = SignedEnvelopes.Verify(Profile(version: 5), EnvelopeKinds.Profile, Now);
        var rival = SignedEnvelopes.Verify(Profile(version: 5, name: "Other"), EnvelopeKinds.Profile, Now);

        Assert.Equal(EnvelopeFault.Replayed, Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.SupersedesStored(rival, stored.Version, stored.Envelope.Payload.Span)).Fault);
    }

    [Fact]
    public void TheSameEnvelopeAgainChangesNothingAndANewerOneWins()
    {
        var stored = SignedEnvelopes.Verify(Profile(version: 5), EnvelopeKinds.Profile, Now);
        var newer = SignedEnvelopes.Verify(Profile(version: 6), EnvelopeKinds.Profile, Now);

        Assert.False(SignedEnvelopes.SupersedesStored(stored, stored.Version, stored.Envelope.Payload.Span));
        Assert.True(SignedEnvelopes.SupersedesStored(newer, stored.Version, stored.Envelope.Payload.Span));
        Assert.True(SignedEnvelopes.SupersedesStored(stored, null, default));
    }
}
