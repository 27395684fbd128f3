using Grpc.Core;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Supernode.Tests.Infrastructure;

/// <summary>The session protocol by hand, to send what a well-behaved client never would.</summary>
internal sealed class RawSession : IDisposable
{
    private readonly AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> _call;

    private RawSession(AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> call, SessionChallenge challenge)
    {
        _call = call;
        Challenge = challenge;
    }

    public SessionChallenge Challenge { get; }

    public static async Task<RawSession> OpenAsync(Protocol.Api.SupernodeClients client)
    {
        var call = client.Directory.Session(deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.True(await call.ResponseStream.MoveNext(), "the supernode sent no challenge");
        Assert.Equal(SessionServerMessage.KindOneofCase.Challenge, call.ResponseStream.Current.KindCase);
        return new RawSession(call, call.ResponseStream.Current.Challenge);
    }

    public static SignedEnvelope Proof(PeerIdentity identity, SessionChallenge challenge, byte[] tlsKey)
    {
        ArgumentNullException.ThrowIfNull(challenge);
        var now = DateTimeOffset.UtcNow;
        return SignedEnvelopes.Sign(identity, EnvelopeKinds.SessionProof, 1, new SessionProof { Challenge = challenge.Nonce, SupernodeId = challenge.SupernodeId, DialedUrl = challenge.SupernodeUrl, TlsKeySha256 = Google.Protobuf.ByteString.CopyFrom(tlsKey) }, now, now.AddMinutes(1));
    }

    public static SignedEnvelope Proof(PeerIdentity identity, SessionChallenge challenge)
    {
        var now = DateTimeOffset.UtcNow;
        return SignedEnvelopes.Sign(identity, EnvelopeKinds.SessionProof, 1, new SessionProof { Challenge = challenge.Nonce, SupernodeId = challenge.SupernodeId, DialedUrl = challenge.SupernodeUrl }, now, now.AddMinutes(1));
    }

    public static SignedEnvelope Profile(PeerIdentity identity, string name, ulong version)
    {
        var now = DateTimeOffset.UtcNow;
        return SignedEnvelopes.Sign(identity, EnvelopeKinds.Profile, version, new PeerProfile { DisplayName = name }, now, now.AddDays(1));
    }

    public Task SendAsync(SessionClientMessage message) => _call.RequestStream.WriteAsync(message);

    public Task SendHelloAsync(SignedEnvelope proof, SignedEnvelope? profile = null) =>
        SendAsync(new SessionClientMessage { Hello = new SessionHello { Proof = proof, Profile = profile } });

    /// <summary>The next message, or the status the supernode ended the stream with.</summary>
    public async Task<SessionServerMessage> ReadAsync()
    {
        Assert.True(await _call.ResponseStream.MoveNext(), "the stream ended without a status");
        return _call.ResponseStream.Current;
    }

    /// <summary>Asserts the stream ends with <paramref name="code"/>; returns the status detail.</summary>
    public async Task<string> ExpectStatusAsync(StatusCode code)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await _call.ResponseStream.MoveNext())
            {
            }
        });
        Assert.Equal(code, ex.StatusCode);
        return ex.Status.Detail;
    }

    public void Dispose() => _call.Dispose();
}
