using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Daemon;

/// <summary>The peer protocol as this peer's host serves it. The caller is whoever its client certificate's key says.</summary>
public sealed class PeerLinkService(Messaging messaging, Transfers transfers) : PeerLink.PeerLinkBase
{
    public override Task<ChatAck> Chat(SignedEnvelope request, ServerCallContext context) =>
        Task.FromResult(messaging.ReceiveChat(request, Caller(context)));

    public override Task<OrderStepAck> Order(OrderStep request, ServerCallContext context) =>
        messaging.ReceiveOrderStepAsync(request, Caller(context), context?.CancellationToken ?? default);

    public override Task<ContentManifest> GetManifest(ContentRequest request, ServerCallContext context) =>
        Task.FromResult(transfers.GetManifest(request, Caller(context)));

    public override Task Fetch(ContentRequest request, IServerStreamWriter<ContentChunk> responseStream, ServerCallContext context) =>
        transfers.ServeAsync(request, Caller(context), responseStream, context?.CancellationToken ?? default);

    private static PeerId Caller(ServerCallContext? context) =>
        PeerCertificates.TryGetPeerId(context?.GetHttpContext().Connection.ClientCertificate, out var peer)
            ? peer
            : throw new RpcException(new Status(StatusCode.Unauthenticated, "peer links need a client certificate made from the caller's peer key"));
}
