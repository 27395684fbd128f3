using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Chat;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Orders;
using Hybrid.Client.Store;
using Hybrid.Client.Transfers;
using Hybrid.Protocol.Content;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Daemon;

/// <summary>The daemon's local API, for the CLI and the desktop app (owner-only Unix socket).</summary>
public sealed class ControlService(
    LocalStore store,
    ChatService chats,
    OrderService orders,
    TransferService transfers,
    PeerBudgets budgets,
    DaemonStatus status,
    PeerHost host) : Control.ControlBase
{
    /// <summary>Chat messages sent before following, when the request names no limit.</summary>
    public const int DefaultChatLimit = 500;

    /// <summary>Most chat messages sent before following.</summary>
    public const int MaxChatLimit = 1000;

    /// <summary>Orders per page when the request names no page size.</summary>
    public const int DefaultOrderPage = 100;

    /// <summary>Most orders per page.</summary>
    public const int MaxOrderPage = 500;

    public override Task<StatusReply> Status(StatusRequest request, ServerCallContext context) => Task.FromResult(status.Build(host.Endpoints));

    public override async Task<ChatEntry> SendChat(SendChatRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var row = await chats.SendAsync(ParsePeer(request.PeerId), request.Text, context?.CancellationToken ?? default);
        return ToEntry(row);
    }

    public override async Task ReadChat(ReadChatRequest request, IServerStreamWriter<ChatEntry> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        PeerId? peer = string.IsNullOrEmpty(request.PeerId) ? null : ParsePeer(request.PeerId);
        var limit = Limit(request.Limit, DefaultChatLimit, MaxChatLimit, "limit");
        if (request.After < 0)
        {
            throw Refuse.Invalid("after is a cursor from an earlier message (0 or more)");
        }

        var after = request.After;
        var first = true;
        while (true)
        {
            var changed = store.Changed;
            // The backlog is cut at the limit; once following, every new message is sent, a page at a time.
            var rows = store.ReadChats(peer, after, first ? limit : MaxChatLimit, first && request.Newest);
            foreach (var row in rows)
            {
                await responseStream.WriteAsync(ToEntry(row), context.CancellationToken);
                after = row.RowId;
            }

            first = false;
            if (!request.Follow)
            {
                return;
            }

            if (rows.Count < MaxChatLimit)
            {
                await changed.WaitAsync(context.CancellationToken);
            }
        }
    }

    public override Task<ListConversationsReply> ListConversations(ListConversationsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var reply = new ListConversationsReply();
        foreach (var (peer, lastText, lastMs, messages) in store.Conversations(Limit(request.Limit, 100, 500, "limit")))
        {
            reply.Conversations.Add(new Conversation { PeerId = peer, LastText = lastText, LastMs = lastMs, Messages = messages, Contact = budgets.IsContact(PeerId.Parse(peer)) });
        }

        return Task.FromResult(reply);
    }

    public override async Task<OrderView> CreateOrder(CreateOrderRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ToView(await orders.CreateOrderAsync(request.ListingId, request.Quantity, context?.CancellationToken ?? default, request.Mediator));
    }

    public override Task<OrderView> AcceptOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.AcceptOrderAsync(r.OrderId, ct, new OrderStepInput(r.Text, AutoCompleteDays: r.AutoCompleteDays)));

    public override Task<OrderView> DeclineOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.DeclineOrderAsync(r.OrderId, r.Text, ct));

    public override Task<OrderView> PayOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.PayOrderAsync(r.OrderId, r.Text, ct));

    public override Task<OrderView> FulfilOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.FulfilOrderAsync(r.OrderId, new OrderStepInput(r.Text, Carrier: r.Carrier, Tracking: r.Tracking, ContentId: r.ContentId, ServiceAtMs: r.ServiceAtMs, Place: r.Place), ct));

    public override Task<OrderView> CancelOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.CancelOrderAsync(r.OrderId, r.Text, ct));

    public override Task<OrderView> DisputeOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.DisputeOrderAsync(r.OrderId, r.Text, ct));

    public override Task<OrderView> CompleteOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.CompleteOrderAsync(r.OrderId, ct, satisfied: !r.Unsatisfied));

    public override Task<OrderView> DecideOrder(OrderRef request, ServerCallContext context) =>
        OrderStep(request, context, (r, ct) => orders.DecideOrderAsync(r.OrderId, r.Outcome, r.BuyerSharePercent, r.Text, ct));

    public override Task<OrderView> GetOrder(OrderRef request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Task.FromResult(ToView(store.GetOrder(request.OrderId) ?? throw Refuse.NotFound($"no order {request.OrderId}: see 'hybrid order list'")));
    }

    public override async Task WatchOrder(OrderRef request, IServerStreamWriter<OrderView> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        OrderRow? last = null;
        while (true)
        {
            var changed = store.Changed;
            var row = store.GetOrder(request.OrderId) ?? throw Refuse.NotFound($"no order {request.OrderId}: see 'hybrid order list'");
            if (last is null || row.UpdatedMs != last.UpdatedMs || row.State != last.State || row.Delivery != last.Delivery)
            {
                await responseStream.WriteAsync(ToView(row), context.CancellationToken);
                last = row;
            }

            await changed.WaitAsync(context.CancellationToken);
        }
    }

    /// <summary>One order step from the control API: the texts are bounded here, the rest is the order service's.</summary>
    private static async Task<OrderView> OrderStep(OrderRef request, ServerCallContext? context, Func<OrderRef, CancellationToken, Task<OrderRow>> step)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (new[] { request.Text, request.Carrier, request.Tracking, request.ContentId, request.Place }.Any(t => t.Length > Receipts.MaxText))
        {
            throw Refuse.Invalid($"a reason, note, carrier, tracking reference or place is at most {Receipts.MaxText} characters");
        }

        return ToView(await step(request, context?.CancellationToken ?? default));
    }

    public override Task<ListOrdersReply> ListOrders(ListOrdersRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var size = Limit(request.PageSize, DefaultOrderPage, MaxOrderPage, "page_size");
        long? beforeMs = null;
        string? beforeId = null;
        if (request.PageToken.Length > 0)
        {
            var split = request.PageToken.IndexOf('/', StringComparison.Ordinal);
            if (split <= 0 || !long.TryParse(request.PageToken.AsSpan(0, split), NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
            {
                throw Refuse.Invalid("page_token is not one this daemon gave out: pass next_page_token from the previous page");
            }

            (beforeMs, beforeId) = (ms, request.PageToken[(split + 1)..]);
        }

        // One more than a page tells whether another page follows.
        var rows = store.ListOrders(size + 1, beforeMs, beforeId);
        var reply = new ListOrdersReply();
        reply.Orders.AddRange(rows.Take(size).Select(ToView));
        if (rows.Count > size)
        {
            var last = rows[size - 1];
            reply.NextPageToken = string.Create(CultureInfo.InvariantCulture, $"{last.UpdatedMs}/{last.OrderId}");
        }

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
            var order = store.GetOrder(request.OrderId) ?? throw Refuse.NotFound($"no order {request.OrderId}: see 'hybrid order list'");
            if (order.Role != "buyer" || string.IsNullOrEmpty(order.ContentId))
            {
                throw Refuse.WrongState(order.Role != "buyer" ? "only the buyer fetches an order's goods" : "this order's listing has no goods data to fetch");
            }

            if (order.State is not ("accepted" or "completed"))
            {
                throw Refuse.WrongState($"order {order.OrderId} is {order.State}; the seller must accept it first");
            }

            (seller, contentId) = (PeerId.Parse(order.Counterparty), order.ContentId);
        }
        else
        {
            if (!ContentManifests.IsContentId(request.ContentId))
            {
                throw Refuse.Invalid($"'{request.ContentId}' is neither an order id nor a content id (sha256:…)");
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

        await transfers.FetchAsync(seller, contentId, request.OrderId, request.OutPath, Report, context.CancellationToken);
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

    private static int Limit(int asked, int byDefault, int most, string name) => asked switch
    {
        0 => byDefault,
        < 0 => throw Refuse.Invalid($"{name} is 1-{most} (0: {byDefault})"),
        _ => Math.Min(asked, most),
    };

    private static PeerId ParsePeer(string text) =>
        PeerId.TryParse(text, out var peer, out var error) ? peer : throw Refuse.Invalid(error);

    private static ChatEntry ToEntry(ChatRow row) => new()
    {
        PeerId = row.Peer,
        Direction = row.Direction,
        Sequence = row.Sequence,
        Text = row.Text,
        SentMs = row.SentMs,
        Status = row.Status,
        Cursor = row.RowId,
    };

    /// <summary>The control API's view of an order: its state as its chain says now, and its timeline.</summary>
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
        var chain = OrderService.ChainOf(row);
        view.Receipt = chain.ToByteString();
        OrderTrace trace;
        try
        {
            trace = Receipts.Trace(chain, DateTimeOffset.UtcNow);
        }
        catch (EnvelopeRejectedException)
        {
            // Stored chains were checked when stored; one that no longer checks (its completion's
            // validity ran out) is shown as stored.
            return view;
        }

        view.State = OrderService.StateName(trace.State);
        view.Mediator = trace.Offer.Offer.Mediator;
        view.PaymentInstructions = trace.Acceptance?.PaymentInstructions ?? string.Empty;
        (view.DeadlineMs, view.Deadline) = trace.State switch
        {
            OrderState.Offered => (trace.Offer.ExpiresAt.ToUnixTimeMilliseconds(), "offer expires"),
            OrderState.Accepted when trace.AnswerBy is { } by => (by.ToUnixTimeMilliseconds(), "acceptance lapses"),
            OrderState.Fulfilled when trace.AutoCompletesAt is { } at => (at.ToUnixTimeMilliseconds(), "completes itself"),
            _ => (0L, string.Empty),
        };
        view.Timeline.AddRange(Timeline(chain, trace));
        return view;
    }

    private static IEnumerable<OrderStepView> Timeline(Receipt chain, OrderTrace trace)
    {
        string By(SignedEnvelope e)
        {
            var signer = PeerId.FromPublicKey(e.SignerPublicKey.Span);
            return signer.Equals(trace.Offer.Buyer) ? "buyer" : signer.Equals(trace.Offer.Seller) ? "seller" : "mediator";
        }

        static long At(SignedEnvelope e) => EnvelopePayload.Parser.ParseFrom(e.Payload).IssuedAtMs;
        static T Body<T>(SignedEnvelope e, Google.Protobuf.MessageParser<T> parser)
            where T : Google.Protobuf.IMessage<T> => parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(e.Payload).Body);

        var offer = trace.Offer.Offer;
        yield return new OrderStepView { Step = "offered", By = "buyer", AtMs = At(chain.Offer), Detail = $"{offer.Quantity} × {ListingRules.Format(offer.UnitPrice)}" + (offer.Mediator.Length > 0 ? $", mediator {offer.Mediator}" : string.Empty) };
        if (chain.Acceptance is { } acceptance)
        {
            yield return new OrderStepView { Step = "accepted", By = "seller", AtMs = At(acceptance), Detail = trace.Acceptance?.PaymentInstructions ?? string.Empty };
        }

        foreach (var step in chain.Steps)
        {
            var body = Body(step, OrderProgress.Parser);
            var detail = body.KindCase switch
            {
                OrderProgress.KindOneofCase.Declined => body.Declined.Reason,
                OrderProgress.KindOneofCase.Paid => body.Paid.Note,
                OrderProgress.KindOneofCase.Cancelled => body.Cancelled.Reason,
                OrderProgress.KindOneofCase.Disputed => body.Disputed.Reason,
                OrderProgress.KindOneofCase.Fulfilled => string.Join(", ", new[]
                {
                    body.Fulfilled.Carrier, body.Fulfilled.Tracking, body.Fulfilled.ContentId,
                    body.Fulfilled.ServiceAtMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(body.Fulfilled.ServiceAtMs).ToString("u", CultureInfo.InvariantCulture) : string.Empty,
                    body.Fulfilled.Place, body.Fulfilled.Note,
                }.Where(t => t.Length > 0)),
                _ => string.Empty,
            };
            yield return new OrderStepView { Step = Receipts.Name(body.KindCase), By = By(step), AtMs = At(step), Detail = detail };
        }

        if (chain.Completion is { } completion)
        {
            yield return new OrderStepView { Step = "completed", By = "buyer", AtMs = At(completion), Detail = Body(completion, OrderCompletion.Parser).Satisfied ? "satisfied" : "not satisfied" };
        }

        if (chain.Verdict is { } verdict)
        {
            var v = Body(verdict, OrderVerdict.Parser);
            yield return new OrderStepView { Step = "decided", By = "mediator", AtMs = At(verdict), Detail = (v.Outcome == "split" ? $"split, {v.BuyerSharePercent}% to the buyer" : $"for the {v.Outcome}") + (v.Note.Length > 0 ? $": {v.Note}" : string.Empty) };
        }

        if (trace.State == OrderState.AutoCompleted && trace.AutoCompletesAt is { } at)
        {
            yield return new OrderStepView { Step = "auto-completed", By = string.Empty, AtMs = at.ToUnixTimeMilliseconds(), Detail = "neither completed nor disputed by the deadline" };
        }
    }
}
