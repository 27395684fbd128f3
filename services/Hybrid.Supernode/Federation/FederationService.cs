using Grpc.Core;
using Hybrid.Index.Federation;
using Hybrid.Index.Listings;
using Hybrid.Index.Reputation;
using Hybrid.Index.Search;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;
using Hybrid.Protocol.Identity;
using Hybrid.Supernode.Api;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Hosting;

namespace Hybrid.Supernode.Federation;

/// <summary>
/// What this cluster answers to other clusters: who it is, where its sets of listings and reviews
/// differ from theirs, and the signed listings and reviews themselves. Everything served is public (anyone may search
/// it), so the calls are charged to the caller's address like any other call, and on the federation
/// listener also to the calling cluster.
/// </summary>
public sealed class FederationService(
    FederationIdentity identity,
    LocalListings local,
    LocalReviews reviews,
    FederationPeers peers,
    IGrainFactory grains,
    ShardedSearch search,
    RequestLimits limits,
    ReplyPages pages,
    SupernodeOptions options,
    MailIntake mail,
    Relay.RelayDialer dialer,
    TimeProvider time) : FederationApi.FederationApiBase
{
    private static readonly TimeSpan HelloValidity = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Charges the call to the caller's address, and on the federation listener to the cluster whose
    /// key the caller presented (a blocked cluster is refused there).
    /// </summary>
    private void Admit(ServerCallContext context)
    {
        limits.Call(context);
        var http = context.GetHttpContext();
        if (!Listeners.IsFederation(http))
        {
            return;
        }

        if (!PeerCertificates.TryGetPeerId(http.Connection.ClientCertificate, out var cluster))
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, "present the certificate of your cluster's federation key (a P-256 key) to call this listener"));
        }

        if (peers.IsBlocked(cluster))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"cluster {cluster} is blocked by this cluster's operators"));
        }

        limits.Cluster(cluster);
    }

    public override Task<SignedEnvelope> Hello(FederationHello request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Admit(context);
        if (request.Nonce.Length is < 16 or > 64)
        {
            throw Requests.Invalid($"the nonce is {request.Nonce.Length} bytes; send 16 to 64 random bytes");
        }

        var now = time.GetUtcNow();
        var answer = new FederationHelloAnswer { Nonce = request.Nonce };
        if (request.WantPeers)
        {
            answer.Peers.AddRange(peers.Introductions());
        }

        return Task.FromResult(SignedEnvelopes.Sign(identity.Key, EnvelopeKinds.FederationHello, 1, answer, now, now + HelloValidity));
    }

    public override async Task<ReconcileReply> Reconcile(ReconcileRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Admit(context);
        if (request.Ranges.Count is 0 or > FederationWire.MaxRanges)
        {
            throw Requests.Invalid($"ask about 1 to {FederationWire.MaxRanges} ranges at a time ({request.Ranges.Count} were sent)");
        }

        var asked = new List<(Index.Federation.IdRange Range, Fingerprint Fingerprint)>(request.Ranges.Count);
        foreach (var wire in request.Ranges)
        {
            asked.Add(FederationWire.FromWire(wire, out var problem) ?? throw Requests.Invalid(problem!));
        }

        LocalSet held = request.Set switch
        {
            ObjectSet.Listings => local,
            ObjectSet.Reviews => reviews,
            _ => throw Requests.Invalid($"set {(int)request.Set} is not one this cluster reconciles (listings or reviews)"),
        };
        var mine = (await held.SnapshotAsync()).Offered;
        var reply = new ReconcileReply();
        for (var i = 0; i < asked.Count; i++)
        {
            reply.Ranges.Add(FederationWire.ToWire(Reconciliation.Answer(mine, asked[i].Range, asked[i].Fingerprint)));
        }

        return reply;
    }

    /// <summary>Checks the ids of a fetch: 1 to <see cref="FederationWire.MaxFetch"/>, each well formed (<paramref name="problem"/> says why not).</summary>
    private static void CheckAsked(Google.Protobuf.Collections.RepeatedField<string> ids, string what, Func<string, string?> problem)
    {
        if (ids.Count is 0 or > FederationWire.MaxFetch)
        {
            throw Requests.Invalid($"ask for 1 to {FederationWire.MaxFetch} {what} at a time ({ids.Count} were sent)");
        }

        foreach (var id in ids)
        {
            if (problem(id) is { } why)
            {
                throw Requests.Invalid(why);
            }
        }
    }

    public override async Task<FetchListingsReply> FetchListings(FetchListingsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Admit(context);
        CheckAsked(request.ListingIds, "listings", id => ListingRules.IsListingId(id, out var error) ? null : error);

        var found = await Task.WhenAll(request.ListingIds.Distinct(StringComparer.Ordinal)
            .GroupBy(id => ListingShards.Of(id, search.ShardCount))
            .Select(g => search.ShardOf(g.First()).FetchHeld([.. g])));
        var reply = new FetchListingsReply();
        pages.Fill(reply.Listings, [.. found.SelectMany(f => f)], stored => new HeldListing
        {
            Listing = SignedEnvelope.Parser.ParseFrom(stored.Envelope),
            Withdrawal = stored.Withdrawal is { } withdrawal ? SignedEnvelope.Parser.ParseFrom(withdrawal) : null,
            OriginCluster = stored.Origin ?? identity.ClusterId.ToString(),
        });
        return reply;
    }

    public override async Task<FetchReviewsReply> FetchReviews(FetchReviewsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Admit(context);
        CheckAsked(request.ReviewIds, "reviews", id => Reviews.IsReviewId(id) ? null : $"'{(id.Length > 40 ? id[..40] + "…" : id)}' is not a review id (32 lowercase hex characters)");

        var found = await Task.WhenAll(request.ReviewIds.Distinct(StringComparer.Ordinal).Select(id => grains.GetGrain<IReviewGrain>(id).Describe()));
        var reply = new FetchReviewsReply();
        pages.Fill(reply.Reviews, [.. found.OfType<StoredReview>()], stored => new HeldReview
        {
            Review = SignedEnvelope.Parser.ParseFrom(stored.Envelope),
            Reply = stored.Reply is { } answer ? SignedEnvelope.Parser.ParseFrom(answer) : null,
        });
        return reply;
    }

    public override async Task<PeerInfo> LookupPeer(LookupPeerRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Admit(context);
        var peer = Requests.ParsePeer(request.PeerId, "peer id");
        return await DirectoryService.LocalAsync(grains, peer)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no peer {peer} has registered with this cluster"));
    }

    public override Task<DepositMailResponse> ForwardMail(ForwardedMail request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Admit(context);
        ForwardingCluster(context);
        var sender = Requests.ParsePeer(request.Sender, "sender");
        var recipient = Requests.ParsePeer(request.Recipient, "recipient");
        return mail.DepositAsync(sender, recipient, mail.Sealed(request.Item));
    }

    public override Task<MailStatusResponse> ForwardMailStatus(ForwardedMailStatus request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Admit(context);
        ForwardingCluster(context);
        var sender = Requests.ParsePeer(request.Sender, "sender");
        var asked = request.Request ?? throw Requests.Invalid("the forwarded status request is missing");
        var recipient = Requests.ParsePeer(asked.Recipient, "recipient");
        return mail.StatusAsync(sender, recipient, asked.ItemIds);
    }

    /// <summary>
    /// Admits a call that speaks for a peer of the calling cluster (forwarded mail, a relayed link):
    /// only a cluster known by its key, on the federation listener, may make it (charged by
    /// <see cref="Admit"/> first). Returns that cluster.
    /// </summary>
    private static PeerId ForwardingCluster(ServerCallContext context)
    {
        var http = context.GetHttpContext();
        if (!Listeners.IsFederation(http) || !PeerCertificates.TryGetPeerId(http.Connection.ClientCertificate, out var cluster))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "mail and relayed links are forwarded only between clusters on the federation listener (Supernode:Federation:Listen), where the forwarding cluster is known by its key"));
        }

        return cluster;
    }

    public override async Task Relay(IAsyncStreamReader<RelayFrame> requestStream, IServerStreamWriter<RelayFrame> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(context);
        Admit(context);
        if (await FirstMessage.ReadAsync(requestStream, options.HelloTimeout, "relay frame", context.CancellationToken) is not { } first)
        {
            return;
        }

        if (first.KindCase != RelayFrame.KindOneofCase.Open)
        {
            throw Requests.Invalid("the first frame of a federated relay carries the dialer's signed request");
        }

        var cluster = ForwardingCluster(context);

        await dialer.DialAsync(first.Open, requestStream, responseStream, context, federatedBy: cluster);
    }
}
