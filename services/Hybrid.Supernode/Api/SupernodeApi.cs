using Grpc.Core;
using Hybrid.Index.Directory;
using Hybrid.Index.Search;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Cluster;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Relay;
using Hybrid.Supernode.Sessions;
using Google.Protobuf;

namespace Hybrid.Supernode.Api;

/// <summary>The public gRPC API: authenticate, validate, call one grain, map the outcome to a status.</summary>
public sealed partial class SupernodeApi(
    IGrainFactory grains,
    ShardedSearch search,
    SessionHost sessions,
    SessionHub hub,
    SupernodeRegistration registration,
    RequestLimits limits,
    IdentityAdmission admission,
    SupernodeMetrics metrics,
    RelayHub relays,
    RelayForwarding forwarding,
    SupernodeOptions options,
    TimeProvider time) : Protocol.V1.Supernode.SupernodeBase
{
    /// <summary>Metadata key carrying the session token on authenticated calls.</summary>
    public const string SessionHeader = "hybrid-session";

    public override Task Session(IAsyncStreamReader<SessionClientMessage> requestStream, IServerStreamWriter<SessionServerMessage> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        return sessions.RunAsync(requestStream, responseStream, context);
    }

    public override async Task<PeerInfo> LookupPeer(LookupPeerRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var peer = ParsePeer(request.PeerId, "peer id");
        metrics.Lookups.Inc();
        var snapshot = await grains.GetGrain<IPeerGrain>(peer.ToString()).Describe()
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no peer {peer} has registered on this network"));
        var info = new PeerInfo
        {
            PeerId = peer.ToString(),
            PublicKey = ByteString.CopyFrom(snapshot.PublicKey),
            Online = snapshot.Online,
            LastSeenMs = snapshot.LastSeen.ToUnixTimeMilliseconds(),
            SupernodeUrl = snapshot.SupernodeUrl ?? string.Empty,
        };
        info.Endpoints.AddRange(snapshot.Endpoints.Select(url => new PeerEndpoint { Url = url }));
        if (snapshot.ProfileEnvelope is { } profile)
        {
            info.Profile = SignedEnvelope.Parser.ParseFrom(profile);
            info.DisplayName = PeerProfile.Parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(info.Profile.Payload).Body).DisplayName;
        }

        return info;
    }

    public override async Task<ListSupernodesResponse> ListSupernodes(ListSupernodesRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var response = new ListSupernodesResponse();
        response.Supernodes.AddRange((await registration.LiveSupernodesAsync()).Select(s => new SupernodeInfo
        {
            Url = s.Url,
            StartedMs = s.StartedAt.ToUnixTimeMilliseconds(),
        }));
        return response;
    }

    public override async Task<PublishProfileResponse> PublishProfile(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var session = RequireSession(context);
        limits.Call(session.Peer);
        var verified = SignedEnvelopes.Verify(request, EnvelopeKinds.Profile, time.GetUtcNow(), session.Peer);
        SessionHost.ValidateProfile(verified.Body(PeerProfile.Parser));
        var result = await grains.GetGrain<IPeerGrain>(session.Peer.ToString()).PublishProfile(
            request.SignerPublicKey.ToByteArray(),
            new SignedProfile(request.ToByteArray(), request.Payload.ToByteArray(), verified.Version));
        return result.Succeeded
            ? new PublishProfileResponse { Version = verified.Version }
            : throw new RpcException(new Status(IndexStatus.For(result.Outcome), result.Message));
    }

    private OpenSession RequireSession(ServerCallContext context) =>
        hub.TryGet(context.RequestHeaders.GetValue(SessionHeader), out var session)
            ? session
            : throw new RpcException(new Status(StatusCode.Unauthenticated, $"{context.Method} needs an open session on this supernode: open Session and send its token as '{SessionHeader}' metadata"));
}
