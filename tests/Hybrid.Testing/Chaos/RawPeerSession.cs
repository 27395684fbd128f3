using Grpc.Core;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Testing.Chaos;

/// <summary>A peer's session opened by hand (challenge, proof naming the URL the challenge names, profile), for one operation, then closed.</summary>
internal sealed class RawPeerSession : IAsyncDisposable
{
    // Each hello carries a newer profile version than any before it from this process (a supernode keeps the newest).
    private static long s_profileVersion = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;

    private readonly AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> _call;

    private RawPeerSession(AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> call, string token, ulong profileVersion)
    {
        _call = call;
        Token = new Metadata { { Protocol.Api.SupernodeClients.SessionHeader, token } };
        ProfileVersion = profileVersion;
    }

    /// <summary>The version of the profile this session's welcome acknowledged.</summary>
    public ulong ProfileVersion { get; }

    /// <summary>Metadata carrying the session token.</summary>
    public Metadata Token { get; }

    public static async Task<RawPeerSession> OpenAsync(Protocol.Api.SupernodeClients client, PeerIdentity identity, DateTime deadline)
    {
        var call = client.Directory.Session(deadline: deadline);
        try
        {
            if (!await call.ResponseStream.MoveNext() || call.ResponseStream.Current.KindCase != SessionServerMessage.KindOneofCase.Challenge)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "the supernode sent no challenge"));
            }

            var challenge = call.ResponseStream.Current.Challenge;
            var now = DateTimeOffset.UtcNow;
            var proof = SignedEnvelopes.Sign(identity, EnvelopeKinds.SessionProof, 1, new SessionProof { Challenge = challenge.Nonce, SupernodeId = challenge.SupernodeId, DialedUrl = challenge.SupernodeUrl }, now, now.AddMinutes(1));
            var profileVersion = (ulong)Interlocked.Increment(ref s_profileVersion);
            var profile = SignedEnvelopes.Sign(identity, EnvelopeKinds.Profile, profileVersion, new PeerProfile { DisplayName = "chaos" }, now, now.AddDays(1));
            await call.RequestStream.WriteAsync(new SessionClientMessage { Hello = new SessionHello { Proof = proof, Profile = profile } });
            if (!await call.ResponseStream.MoveNext() || call.ResponseStream.Current.KindCase != SessionServerMessage.KindOneofCase.Welcome)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "the supernode ended the session before its welcome"));
            }

            return new RawPeerSession(call, call.ResponseStream.Current.Welcome.SessionToken, profileVersion);
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _call.RequestStream.CompleteAsync();
        }
        catch (Exception ex) when (ex is RpcException or InvalidOperationException)
        {
            // Already ended.
        }

        _call.Dispose();
    }
}
