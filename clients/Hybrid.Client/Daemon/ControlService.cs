using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Store;
using Hybrid.Protocol.Content;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Daemon;

/// <summary>The daemon's local API, for the CLI and the desktop app (owner-only Unix socket).</summary>
public sealed class ControlService(PeerDaemon daemon) : Control.ControlBase
{
    public override Task<StatusReply> Status(StatusRequest request, ServerCallContext context) => Task.FromResult(daemon.Status());

    public override async Task<ChatEntry> SendChat(SendChatRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var row = await daemon.Messaging.SendChatAsync(ParsePeer(request.PeerId), request.Text, context?.CancellationToken ?? default);
        return ToEntry(row);
    }

    public override async Task ReadChat(ReadChatRequest request, IServerStreamWriter<ChatEntry> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        PeerId? peer = string.IsNullOrEmpty(request.PeerId) ? null : ParsePeer(request.PeerId);
        long after = 0;
        while (true)
        {
            var changed = daemon.Store.Changed;
            foreach (var row in daemon.Store.ReadChats(peer, after))
            {
                await responseStream.WriteAsync(ToEntry(row), context.CancellationToken);
                after = row.RowId;
            }

            if (!request.Follow)
            {
                return;
            }

            await changed.WaitAsync(context.CancellationToken);
        }
    }

    public override async Task<OrderView> CreateOrder(CreateOrderRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ToView(await daemon.Messaging.CreateOrderAsync(request.ListingId, request.Quantity, context?.CancellationToken ?? default));
    }

    public override async Task<OrderView> AcceptOrder(OrderRef request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ToView(await daemon.Messaging.AcceptOrderAsync(request.OrderId, context?.CancellationToken ?? default));
    }

    public override async Task<OrderView> CompleteOrder(OrderRef request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ToView(await daemon.Messaging.CompleteOrderAsync(request.OrderId, context?.CancellationToken ?? default));
    }

    public override Task<ListOrdersReply> ListOrders(ListOrdersRequest request, ServerCallContext context)
    {
        var reply = new ListOrdersReply();
        reply.Orders.AddRange(daemon.Store.ListOrders().Select(ToView));
        return Task.FromResult(reply);
    }

    public override async Task Fetch(FetchRequest request, IServerStreamWriter<FetchProgress> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        PeerId seller;
        string contentId;
        if (!string.IsNullOrEmpty(request.OrderId))
        {
            var order = daemon.Store.GetOrder(request.OrderId) ?? throw new RpcException(new Status(StatusCode.NotFound, $"no order {request.OrderId}: see 'hybrid order list'"));
            if (order.Role != "buyer" || string.IsNullOrEmpty(order.ContentId))
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, order.Role != "buyer" ? "only the buyer fetches an order's goods" : "this order's listing has no goods data to fetch"));
            }

            if (order.State is not ("accepted" or "completed"))
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"order {order.OrderId} is {order.State}; the seller must accept it first"));
            }

            (seller, contentId) = (PeerId.Parse(order.Counterparty), order.ContentId);
        }
        else
        {
            if (!ContentManifests.IsContentId(request.ContentId))
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"'{request.ContentId}' is neither an order id nor a content id (sha256:…)"));
            }

            (seller, contentId) = (ParsePeer(request.FromPeer), request.ContentId);
        }

        // Progress goes out at most every 100 ms (and always at the end), not once per chunk.
        var last = 0L;
        var writes = Task.CompletedTask;
        void Report(FetchStatus status)
        {
            if (status.Done || System.Diagnostics.Stopwatch.GetElapsedTime(last) > TimeSpan.FromMilliseconds(100))
            {
                last = System.Diagnostics.Stopwatch.GetTimestamp();
                var message = ToProgress(status);
                writes = writes.ContinueWith(_ => responseStream.WriteAsync(message, context.CancellationToken), context.CancellationToken, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
            }
        }

        await daemon.Transfers.FetchAsync(seller, contentId, request.OrderId, request.OutPath, Report, context.CancellationToken);
        await writes;
    }

    private static FetchProgress ToProgress(FetchStatus s) => new()
    {
        ReceivedBytes = s.ReceivedBytes,
        TotalBytes = s.TotalBytes,
        ResumedFromBytes = s.ResumedFromBytes,
        Attempt = s.Attempt,
        Path = s.Path,
        Done = s.Done,
        File = s.File,
        ContentId = s.ContentId,
    };

    private static PeerId ParsePeer(string text) =>
        PeerId.TryParse(text, out var peer, out var error) ? peer : throw new RpcException(new Status(StatusCode.InvalidArgument, error));

    private static ChatEntry ToEntry(ChatRow row) => new()
    {
        PeerId = row.Peer,
        Direction = row.Direction,
        Sequence = row.Sequence,
        Text = row.Text,
        SentMs = row.SentMs,
        Status = row.Status,
    };

    /// <summary>The control API's view of an order.</summary>
    public static OrderView ToView(OrderRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var view = new OrderView
        {
            OrderId = row.OrderId,
            Role = row.Role,
            Counterparty = row.Counterparty,
            ListingId = row.ListingId,
            Title = row.Title,
            Price = row.Price,
            Quantity = row.Quantity,
            State = row.State,
            ContentId = row.ContentId,
            UpdatedMs = row.UpdatedMs,
            Delivery = row.Delivery,
        };
        if (row is { Acceptance: { } acceptance, Completion: { } completion })
        {
            view.Receipt = new Receipt
            {
                Offer = SignedEnvelope.Parser.ParseFrom(row.Offer),
                Acceptance = SignedEnvelope.Parser.ParseFrom(acceptance),
                Completion = SignedEnvelope.Parser.ParseFrom(completion),
            }.ToByteString();
        }

        return view;
    }
}
