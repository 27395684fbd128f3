using Grpc.Core;
using Hybrid.Index.Directory;
using Hybrid.Index.Supernodes;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Cluster;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Sessions;
using Google.Protobuf;

namespace Hybrid.Supernode.Api;

/// <summary>Sessions, look-ups, the supernode list and profiles: who is online and how to reach them.</summary>
public sealed class DirectoryService(
    IGrainFactory grains,
    SessionHost sessions,
    SessionHub hub,
    SupernodeRegistration registration,
    RequestLimits limits,
    SupernodeMetrics metrics,
    Federation.FederatedLookup federation,
    TimeProvider time) : DirectoryApi.DirectoryApiBase
{
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
        var peer = Requests.ParsePeer(request.PeerId, "peer id");
        metrics.Lookups.Inc();
        var local = await LocalAsync(grains, peer);
        // A peer this cluster does not know, or knows offline, may be online in a federated cluster.
        if ((local is null || !local.Online) && await federation.AskAsync(peer, context) is { } remote
            && (local is null || remote.Online || remote.LastSeenMs > local.LastSeenMs))
        {
            return remote;
        }

        return local ?? throw new RpcException(new Status(StatusCode.NotFound, $"no peer {peer} has registered on this network"));
    }

    /// <summary>What this cluster's own directory knows of <paramref name="peer"/>; null when it never registered here.</summary>
    public static async Task<PeerInfo?> LocalAsync(IGrainFactory grains, PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(grains);
        var snapshot = await grains.GetGrain<IPeerGrain>(peer.ToString()).Describe();
        if (snapshot is null)
        {
            return null;
        }

        var info = new PeerInfo
        {
            PeerId = peer.ToString(),
            PublicKey = ByteString.CopyFrom(snapshot.PublicKey),
            Online = snapshot.Online,
            LastSeenMs = snapshot.LastSeen.ToUnixTimeMilliseconds(),
            SupernodeUrl = snapshot.SupernodeUrl ?? string.Empty,
        };
        info.Endpoints.AddRange(snapshot.Endpoints.Select(url => new PeerEndpoint { Url = url }));
        info.Candidates.AddRange(snapshot.Candidates.Select(url => new PeerEndpoint { Url = url }));
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
        response.Supernodes.AddRange(Describe(await registration.LiveSupernodesAsync()));
        return response;
    }

    /// <summary>Supernodes as clients see them: their URL and when they started, nothing of the cluster's internals.</summary>
    public static IEnumerable<SupernodeInfo> Describe(IEnumerable<SupernodeRecord> supernodes) =>
        supernodes.Select(s => new SupernodeInfo { Url = s.Url, StartedMs = s.StartedAt.ToUnixTimeMilliseconds() });

    public override async Task<PublishProfileResponse> PublishProfile(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var session = hub.Require(context);
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

}
