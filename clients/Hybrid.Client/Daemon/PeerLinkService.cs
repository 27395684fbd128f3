using Grpc.Core;
using Hybrid.Client.Chat;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Orders;
using Hybrid.Client.Transfers;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Daemon;

/// <summary>
/// The peer protocol as this peer's host serves it. The caller is whoever its client certificate's
/// key says, and every call is charged to that caller's budget first.
/// </summary>
public sealed class PeerLinkService(ChatService chats, OrderService orders, TransferService transfers, HolePunch punch, PeerDialer dialer, PeerBudgets budgets) : PeerLink.PeerLinkBase
{
    public override Task<ChatAck> Chat(SignedEnvelope request, ServerCallContext context) =>
        Task.FromResult(chats.Receive(request, Admit(context)));

    public override Task<OrderStepAck> Order(OrderStep request, ServerCallContext context) =>
        orders.ReceiveOrderStepAsync(request, Admit(context), context?.CancellationToken ?? default);

    public override Task<ContentManifest> GetManifest(ContentRequest request, ServerCallContext context) =>
        Task.FromResult(transfers.GetManifest(request, Admit(context)));

    public override Task Fetch(ContentRequest request, IServerStreamWriter<ContentChunk> responseStream, ServerCallContext context) =>
        transfers.ServeAsync(request, Admit(context), responseStream, context?.CancellationToken ?? default);

    public override Task Punch(IAsyncStreamReader<PunchMessage> requestStream, IServerStreamWriter<PunchMessage> responseStream, ServerCallContext context)
    {
        var caller = Admit(context);
        return punch.RespondAsync(caller, requestStream, responseStream, ct => dialer.DialBackAsync(caller, ct), context?.CancellationToken ?? default);
    }

    public override Task Reverse(IAsyncStreamReader<RelayFrame> requestStream, IServerStreamWriter<RelayFrame> responseStream, ServerCallContext context)
    {
        var caller = Admit(context);
        var connection = context?.GetHttpContext().Connection;
        var remote = connection?.RemoteIpAddress is { } address ? $"{address}:{connection.RemotePort}" : "a punched connection";
        return dialer.AcceptReverseAsync(caller, remote, requestStream, responseStream, context?.CancellationToken ?? default);
    }

    private PeerId Admit(ServerCallContext? context)
    {
        if (!PeerCertificates.TryGetPeerId(context?.GetHttpContext().Connection.ClientCertificate, out var peer))
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, "peer links need a client certificate made from the caller's peer key"));
        }

        budgets.AdmitCall(peer);
        return peer;
    }
}
