using Google.Protobuf;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Mailbox;
using Hybrid.Client.Store;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Orders;

/// <summary>What a local order step carries besides its kind (from the control API).</summary>
public sealed record OrderStepInput(
    string Text = "",
    bool Unsatisfied = false,
    uint AutoCompleteDays = 0,
    string Carrier = "",
    string Tracking = "",
    string ContentId = "",
    long ServiceAtMs = 0,
    string Place = "",
    string Outcome = "",
    uint BuyerSharePercent = 0);

/// <summary>
/// Orders between a buyer and a seller, and the mediator of a disputed one: signed steps (see
/// <see cref="Receipts"/>), each naming the one before, carried by the <see cref="Courier"/>. Every
/// step, made here or arriving, is appended to the order's chain and the whole chain checked
/// (<see cref="Receipts.Trace"/>) before it is stored: a step the lifecycle does not allow, signed by
/// the wrong party or naming another step is refused with the reason. Incoming offers are checked
/// against the listing as its seller signed it (price, version, stock, mediators), within the buyer's
/// budget here.
/// </summary>
public sealed partial class OrderService(
    PeerIdentity identity,
    LocalStore store,
    Courier courier,
    ListingLookups listings,
    PeerBudgets budgets,
    ListingStock stock,
    TimeProvider time,
    ILogger<OrderService> logger)
{
    /// <summary>As buyer: makes a signed offer for a listing and sends it to the seller.</summary>
    public async Task<OrderRow> CreateOrderAsync(string listingId, uint quantity, CancellationToken cancellationToken, string mediator = "")
    {
        if (!ListingRules.IsListingId(listingId, out var error))
        {
            throw Refuse.Invalid(error);
        }

        var record = await listings.GetAsync(listingId, fresh: true, cancellationToken);
        if (record.State != ListingState.Active)
        {
            throw Refuse.WrongState($"listing {listingId} is {record.State.ToString().ToLowerInvariant()}; it cannot be ordered");
        }

        var seller = PeerId.Parse(record.Seller);
        if (seller.Equals(identity.Id))
        {
            throw Refuse.Invalid("you cannot order your own listing");
        }

        quantity = Math.Max(quantity, 1);
        if (record.Listing.Quantity == 0)
        {
            throw Refuse.WrongState($"listing {listingId} is sold out");
        }

        if (quantity > record.Listing.Quantity)
        {
            throw Refuse.Invalid($"the listing offers {record.Listing.Quantity}; asked for {quantity}");
        }

        if (mediator.Length > 0 && !record.Listing.Mediators.Contains(mediator))
        {
            throw Refuse.Invalid($"the listing does not name {mediator} as a mediator; it names {(record.Listing.Mediators.Count == 0 ? "none" : string.Join(", ", record.Listing.Mediators))}");
        }

        var offer = new OrderOffer
        {
            OrderId = ListingRules.NewListingId(),
            Seller = record.Seller,
            ListingId = listingId,
            ListingVersion = record.Version,
            UnitPrice = record.Listing.Price,
            Quantity = quantity,
            Title = record.Listing.Title,
            ContentId = record.Listing.ContentId,
            // A listing's mediators are the seller's offer to buyers: take the first unless the buyer chose.
            Mediator = mediator.Length > 0 ? mediator : record.Listing.Mediators.FirstOrDefault(m => m != identity.Id.ToString()) ?? string.Empty,
        };
        var now = time.GetUtcNow();
        var envelope = Receipts.SignOffer(identity, offer, now);
        budgets.AddContact(seller);
        var row = new OrderRow(offer.OrderId, "buyer", record.Seller, listingId, offer.Title, ListingRules.Format(offer.UnitPrice), quantity, "offered", offer.ContentId, envelope.ToByteArray(), null, null, now.ToUnixTimeMilliseconds(), "sending");
        store.SaveOrder(row);
        var how = await courier.DeliverAsync(seller, new PeerMessage { Order = new OrderStep { Offer = envelope } }, "order", offer.OrderId, cancellationToken);
        row = row with { Delivery = how };
        store.SaveOrder(row);
        return row;
    }

    /// <summary>
    /// As seller: accepts an offer (with payment instructions and the auto-completion period) if the
    /// listing still has the units, takes them off its stock and sends the acceptance to the buyer.
    /// </summary>
    public async Task<OrderRow> AcceptOrderAsync(string orderId, CancellationToken cancellationToken, OrderStepInput? input = null)
    {
        var row = RequireOrder(orderId, "seller", "accept");
        var state = Checked(ChainOf(row), time.GetUtcNow(), "accept").State;
        if (state != OrderState.Offered)
        {
            throw Refuse.WrongState($"order {orderId} is {StateName(state)}; only an offered order can be accepted");
        }

        return await stock.TakeAsync(row.ListingId, row.Quantity, () => StepAsync(orderId, "accept", "seller", (chain, _, now) =>
        {
            var acceptance = Receipts.SignAcceptance(identity, chain.Offer, orderId, now, input?.Text ?? string.Empty, input?.AutoCompleteDays ?? 0);
            chain.Acceptance = acceptance;
            return new OrderStep { Acceptance = acceptance };
        }, cancellationToken), cancellationToken);
    }

    /// <summary>As seller: declines an offer, with a reason.</summary>
    public Task<OrderRow> DeclineOrderAsync(string orderId, string reason, CancellationToken cancellationToken) =>
        ProgressAsync(orderId, "decline", "seller", new OrderProgress { Declined = new OrderDeclined { Reason = reason } }, cancellationToken);

    /// <summary>As buyer: marks an accepted order paid (payment happens outside the network).</summary>
    public Task<OrderRow> PayOrderAsync(string orderId, string note, CancellationToken cancellationToken) =>
        ProgressAsync(orderId, "mark paid", "buyer", new OrderProgress { Paid = new OrderPaid { Note = note } }, cancellationToken);

    /// <summary>As seller: marks an accepted order fulfilled (shipped with a tracking reference, delivered as data, or a service date and place).</summary>
    public Task<OrderRow> FulfilOrderAsync(string orderId, OrderStepInput input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var contentId = input.ContentId.Length > 0 ? input.ContentId : store.GetOrder(orderId)?.ContentId ?? string.Empty;
        return ProgressAsync(orderId, "fulfil", "seller", new OrderProgress
        {
            Fulfilled = new OrderFulfilled { Carrier = input.Carrier, Tracking = input.Tracking, ContentId = contentId, ServiceAtMs = input.ServiceAtMs, Place = input.Place, Note = input.Text },
        }, cancellationToken);
    }

    /// <summary>As either party: cancels an order before it is fulfilled, with a reason.</summary>
    public Task<OrderRow> CancelOrderAsync(string orderId, string reason, CancellationToken cancellationToken) =>
        ProgressAsync(orderId, "cancel", null, new OrderProgress { Cancelled = new OrderCancelled { Reason = reason } }, cancellationToken);

    /// <summary>As either party: opens a dispute; the other party and the order's mediator receive it.</summary>
    public async Task<OrderRow> DisputeOrderAsync(string orderId, string reason, CancellationToken cancellationToken)
    {
        var row = await ProgressAsync(orderId, "dispute", null, new OrderProgress { Disputed = new OrderDisputed { Reason = reason } }, cancellationToken);
        var chain = ChainOf(row);
        var mediator = PeerId.Parse(Receipts.Trace(chain, time.GetUtcNow()).Offer.Offer.Mediator);
        budgets.AddContact(mediator);
        var how = await courier.DeliverAsync(mediator, new PeerMessage { Order = new OrderStep { DisputeCase = chain } }, "order", orderId, cancellationToken);
        LogDisputeSent(logger, orderId, mediator, how);
        return row;
    }

    /// <summary>As buyer: completes the order, satisfied or not; the receipt is then co-signed by both.</summary>
    public Task<OrderRow> CompleteOrderAsync(string orderId, CancellationToken cancellationToken, bool satisfied = true) =>
        StepAsync(orderId, "complete", "buyer", (chain, _, now) =>
        {
            var completion = Receipts.SignCompletion(identity, Receipts.LastStep(chain), orderId, satisfied, now);
            chain.Completion = completion;
            return new OrderStep { Completion = completion };
        }, cancellationToken);

    /// <summary>As the mediator of a disputed order: signs the verdict and sends it to both parties.</summary>
    public async Task<OrderRow> DecideOrderAsync(string orderId, string outcome, uint buyerSharePercent, string note, CancellationToken cancellationToken)
    {
        var row = RequireOrder(orderId, "mediator", "decide");
        var chain = ChainOf(row);
        var now = time.GetUtcNow();
        var verdict = Receipts.SignVerdict(identity, Receipts.LastStep(chain), new OrderVerdict { OrderId = orderId, Outcome = outcome, BuyerSharePercent = buyerSharePercent, Note = note }, now);
        chain.Verdict = verdict;
        var trace = Checked(chain, now, "decide");
        row = Save(row, chain, trace, now, "sending");
        var step = new PeerMessage { Order = new OrderStep { Verdict = verdict } };
        var toBuyer = await courier.DeliverAsync(trace.Offer.Buyer, step, "order", orderId, cancellationToken);
        var toSeller = await courier.DeliverAsync(trace.Offer.Seller, step, "order", orderId, cancellationToken);
        row = row with { Delivery = toBuyer == toSeller ? toBuyer : $"{toBuyer}/{toSeller}" };
        store.SaveOrder(row);
        return row;
    }

    /// <summary>Checks and applies one order step from another peer.</summary>
    public async Task<OrderStepAck> ReceiveOrderStepAsync(OrderStep step, PeerId? linkPeer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(step);
        var now = time.GetUtcNow();
        try
        {
            switch (step.KindCase)
            {
                case OrderStep.KindOneofCase.Offer:
                    return await ReceiveOfferAsync(step.Offer, linkPeer, now, cancellationToken);
                case OrderStep.KindOneofCase.DisputeCase:
                    return ReceiveDisputeCase(step.DisputeCase, linkPeer, now);
                case OrderStep.KindOneofCase.Acceptance:
                    return Append(step.Acceptance, EnvelopeKinds.OrderAcceptance, OrderAcceptance.Parser, a => a.OrderId, linkPeer, now, (chain, e) => chain.Acceptance = e);
                case OrderStep.KindOneofCase.Completion:
                    return Append(step.Completion, EnvelopeKinds.OrderCompletion, OrderCompletion.Parser, c => c.OrderId, linkPeer, now, (chain, e) => chain.Completion = e);
                case OrderStep.KindOneofCase.Progress:
                    return Append(step.Progress, EnvelopeKinds.OrderProgress, OrderProgress.Parser, p => p.OrderId, linkPeer, now, (chain, e) => chain.Steps.Add(e));
                case OrderStep.KindOneofCase.Verdict:
                    return Append(step.Verdict, EnvelopeKinds.OrderVerdict, OrderVerdict.Parser, v => v.OrderId, linkPeer, now, (chain, e) => chain.Verdict = e);
                default:
                    throw Refuse.Invalid("empty order step");
            }
        }
        catch (EnvelopeRejectedException ex)
        {
            throw Refuse.Invalid($"order step refused: {ex.Message}");
        }
    }

    /// <summary>An order's signed steps as one chain (a receipt once it is finished).</summary>
    public static Receipt ChainOf(OrderRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var chain = row.Steps is { } steps ? Receipt.Parser.ParseFrom(steps) : new Receipt();
        chain.Offer = SignedEnvelope.Parser.ParseFrom(row.Offer);
        chain.Acceptance = row.Acceptance is { } acceptance ? SignedEnvelope.Parser.ParseFrom(acceptance) : null;
        chain.Completion = row.Completion is { } completion ? SignedEnvelope.Parser.ParseFrom(completion) : null;
        return chain;
    }

    /// <summary>The name a person sees for an order state.</summary>
    public static string StateName(OrderState state) => state == OrderState.AutoCompleted ? "auto-completed" : state.ToString().ToLowerInvariant();

    private Task<OrderRow> ProgressAsync(string orderId, string verb, string? role, OrderProgress body, CancellationToken cancellationToken) =>
        StepAsync(orderId, verb, role, (chain, _, now) =>
        {
            body.OrderId = orderId;
            var envelope = Receipts.SignProgress(identity, Receipts.LastStep(chain), body, now);
            chain.Steps.Add(envelope);
            return new OrderStep { Progress = envelope };
        }, cancellationToken);

    /// <summary>Makes one step here: appends it to the chain, checks the whole chain, stores it, sends it to the other party.</summary>
    private async Task<OrderRow> StepAsync(string orderId, string verb, string? role, Func<Receipt, OrderTrace, DateTimeOffset, OrderStep> make, CancellationToken cancellationToken)
    {
        var row = RequireOrder(orderId, role, verb);
        var chain = ChainOf(row);
        var now = time.GetUtcNow();
        var before = Checked(chain, now, verb);
        if (before.IsFinal)
        {
            throw Refuse.WrongState($"order {orderId} is {StateName(before.State)}; nothing follows that");
        }

        var step = make(chain, before, now);
        var after = Checked(chain, now, verb);
        var counterparty = PeerId.Parse(row.Counterparty);
        budgets.AddContact(counterparty);
        row = Save(row, chain, after, now, "sending");
        var how = await courier.DeliverAsync(counterparty, new PeerMessage { Order = step }, "order", orderId, cancellationToken);
        row = row with { Delivery = how };
        store.SaveOrder(row);
        return row;
    }

    private static OrderTrace Checked(Receipt chain, DateTimeOffset now, string verb)
    {
        try
        {
            return Receipts.Trace(chain, now);
        }
        catch (EnvelopeRejectedException ex)
        {
            throw Refuse.WrongState($"cannot {verb} this order: {ex.Message}");
        }
    }

    private OrderRow Save(OrderRow row, Receipt chain, OrderTrace trace, DateTimeOffset now, string delivery)
    {
        var progress = new Receipt { Verdict = chain.Verdict };
        progress.Steps.AddRange(chain.Steps);
        row = row with
        {
            State = StateName(trace.State),
            Acceptance = chain.Acceptance?.ToByteArray(),
            Completion = chain.Completion?.ToByteArray(),
            Steps = progress.ToByteArray(),
            UpdatedMs = now.ToUnixTimeMilliseconds(),
            Delivery = delivery,
        };
        store.SaveOrder(row);
        return row;
    }

    /// <summary>Appends a step from another peer to the order it names, if the whole chain then checks out.</summary>
    private OrderStepAck Append<T>(SignedEnvelope envelope, string kind, MessageParser<T> parser, Func<T, string> orderIdOf, PeerId? linkPeer, DateTimeOffset now, Action<Receipt, SignedEnvelope> add)
        where T : IMessage<T>
    {
        // Signature, signer and place in the chain are checked in full by Trace; this only finds the order.
        T body;
        try
        {
            body = parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(envelope.Payload).Body);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Refuse.Invalid($"{kind} does not parse: {ex.Message}");
        }

        var orderId = orderIdOf(body);
        var row = store.GetOrder(orderId) ?? throw Refuse.NotFound($"no order {orderId} here");
        var chain = ChainOf(row);
        if (Contains(chain, envelope))
        {
            return new OrderStepAck { OrderId = orderId, State = row.State };
        }

        var signer = SignerOf(envelope);
        if (linkPeer is { } from && !from.Equals(signer))
        {
            throw Refuse.NotAllowed("an order step must come from the peer that signed it");
        }

        if (signer.Equals(identity.Id))
        {
            throw Refuse.NotAllowed("a step signed by this peer cannot arrive from elsewhere");
        }

        // The whole chain with the step in place: signers, links, lifecycle order and deadlines.
        add(chain, envelope);
        var trace = Receipts.Trace(chain, now);
        var state = StateName(trace.State);
        Save(row, chain, trace, now, row.Delivery);
        LogStep(logger, orderId, state, signer);
        return new OrderStepAck { OrderId = orderId, State = state };
    }

    private static bool Contains(Receipt chain, SignedEnvelope envelope) =>
        envelope.Equals(chain.Acceptance) || envelope.Equals(chain.Completion) || envelope.Equals(chain.Verdict) || chain.Steps.Contains(envelope);

    private static PeerId SignerOf(SignedEnvelope envelope) => PeerId.FromPublicKey(envelope.SignerPublicKey.Span);

    /// <summary>As mediator: files the case of a disputed order that names this peer as its mediator.</summary>
    private OrderStepAck ReceiveDisputeCase(Receipt chain, PeerId? linkPeer, DateTimeOffset now)
    {
        var trace = Receipts.Trace(chain, now);
        if (trace.Offer.Offer.Mediator != identity.Id.ToString())
        {
            throw Refuse.NotAllowed("this order names another mediator");
        }

        if (trace.State != OrderState.Disputed)
        {
            throw Refuse.WrongState($"a dispute case must end in its dispute; this order is {StateName(trace.State)}");
        }

        if (linkPeer is { } from && !from.Equals(trace.Offer.Buyer) && !from.Equals(trace.Offer.Seller))
        {
            throw Refuse.NotAllowed("a dispute case comes from a party to the order");
        }

        var orderId = trace.Offer.Offer.OrderId;
        if (store.GetOrder(orderId) is { } existing)
        {
            return existing.Role == "mediator"
                ? new OrderStepAck { OrderId = orderId, State = existing.State }
                : throw Refuse.Conflict("this peer is a party to that order, not its mediator");
        }

        // Unsolicited cases cost the sender like offers do.
        budgets.CheckOffer(linkPeer ?? trace.Offer.Buyer);
        var offer = trace.Offer.Offer;
        var row = new OrderRow(orderId, "mediator", trace.Offer.Buyer.ToString(), offer.ListingId, offer.Title, ListingRules.Format(offer.UnitPrice), offer.Quantity, "disputed", offer.ContentId, chain.Offer.ToByteArray(), null, null, now.ToUnixTimeMilliseconds(), "received");
        Save(row, chain, trace, now, "received");
        var (buyer, seller) = (trace.Offer.Buyer, trace.Offer.Seller);
        LogCase(logger, orderId, buyer, seller);
        return new OrderStepAck { OrderId = orderId, State = "disputed" };
    }

    private async Task<OrderStepAck> ReceiveOfferAsync(SignedEnvelope envelope, PeerId? linkPeer, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var offer = Receipts.VerifyOffer(envelope, now);
        if (linkPeer is { } from && !from.Equals(offer.Buyer))
        {
            throw Refuse.NotAllowed("an offer must come from the buyer who signed it");
        }

        if (!offer.Seller.Equals(identity.Id))
        {
            throw Refuse.NotAllowed("this offer is for another seller");
        }

        if (store.GetOrder(offer.Offer.OrderId) is { } existing)
        {
            return existing.Offer.AsSpan().SequenceEqual(envelope.ToByteArray())
                ? new OrderStepAck { OrderId = existing.OrderId, State = existing.State }
                : throw Refuse.Conflict("another offer with this order id exists");
        }

        budgets.CheckOffer(offer.Buyer);
        var record = await listings.GetAsync(offer.Offer.ListingId, fresh: false, cancellationToken);
        if (record.Version < offer.Offer.ListingVersion)
        {
            // The cached copy is older than the version the buyer saw: the seller just updated it.
            record = await listings.GetAsync(offer.Offer.ListingId, fresh: true, cancellationToken);
        }

        if (record.Seller != identity.Id.ToString() || record.State != ListingState.Active)
        {
            throw Refuse.WrongState($"listing {offer.Offer.ListingId} is not an active listing of this seller");
        }

        if (record.Version != offer.Offer.ListingVersion || !record.Listing.Price.Equals(offer.Offer.UnitPrice) || offer.Offer.Quantity > record.Listing.Quantity)
        {
            throw Refuse.WrongState("the offer does not match the listing as it stands now (version, price or quantity changed): look it up again");
        }

        if (offer.Offer.Mediator.Length > 0 && !record.Listing.Mediators.Contains(offer.Offer.Mediator))
        {
            throw Refuse.WrongState("the offer names a mediator the listing does not: look it up again");
        }

        budgets.CheckOffer(offer.Buyer);
        store.SaveOrder(new OrderRow(
            offer.Offer.OrderId, "seller", offer.Buyer.ToString(), offer.Offer.ListingId, offer.Offer.Title, ListingRules.Format(offer.Offer.UnitPrice),
            offer.Offer.Quantity, "offered", record.Listing.ContentId, envelope.ToByteArray(), null, null, now.ToUnixTimeMilliseconds(), "received"));
        LogOffer(logger, offer.Buyer, offer.Offer.OrderId);
        return new OrderStepAck { OrderId = offer.Offer.OrderId, State = "offered" };
    }

    private OrderRow RequireOrder(string orderId, string? role, string verb)
    {
        var row = store.GetOrder(orderId) ?? throw Refuse.NotFound($"no order {orderId}: see 'hybrid order list'");
        if (role is not null && row.Role != role)
        {
            throw Refuse.WrongState($"only the {role} can {verb} an order; you are its {row.Role}");
        }

        if (role is null && row.Role == "mediator")
        {
            throw Refuse.WrongState($"only the buyer or the seller can {verb} an order; you are its mediator");
        }

        return row;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Offer {OrderId} from {Peer}")]
    private static partial void LogOffer(ILogger logger, PeerId peer, string orderId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Order {OrderId} is now {State} (step signed by {Signer})")]
    private static partial void LogStep(ILogger logger, string orderId, string state, PeerId signer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Dispute case {OrderId} between buyer {Buyer} and seller {Seller}")]
    private static partial void LogCase(ILogger logger, string orderId, PeerId buyer, PeerId seller);

    [LoggerMessage(Level = LogLevel.Information, Message = "Dispute on {OrderId} sent to mediator {Mediator} ({How})")]
    private static partial void LogDisputeSent(ILogger logger, string orderId, PeerId mediator, string how);
}
