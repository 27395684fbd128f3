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

/// <summary>
/// Orders between a buyer and a seller: signed steps (offer, acceptance, completion), each naming the
/// one before, carried by the <see cref="Courier"/>. Incoming steps are verified against the stored
/// offer; incoming offers against the listing as its seller signed it, within the buyer's budget here.
/// </summary>
public sealed partial class OrderService(
    PeerIdentity identity,
    LocalStore store,
    Courier courier,
    ListingLookups listings,
    PeerBudgets budgets,
    TimeProvider time,
    ILogger<OrderService> logger)
{
    /// <summary>As buyer: makes a signed offer for a listing and sends it to the seller.</summary>
    public async Task<OrderRow> CreateOrderAsync(string listingId, uint quantity, CancellationToken cancellationToken)
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
        if (quantity > record.Listing.Quantity)
        {
            throw Refuse.Invalid($"the listing offers {record.Listing.Quantity}; asked for {quantity}");
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

    /// <summary>As seller: accepts an offer and sends the signed acceptance to the buyer.</summary>
    public async Task<OrderRow> AcceptOrderAsync(string orderId, CancellationToken cancellationToken)
    {
        var row = RequireOrder(orderId, "seller", "offered", "accept");
        var offer = SignedEnvelope.Parser.ParseFrom(row.Offer);
        var now = time.GetUtcNow();
        var acceptance = Receipts.SignAcceptance(identity, offer, orderId, now);
        budgets.AddContact(PeerId.Parse(row.Counterparty));
        row = row with { State = "accepted", Acceptance = acceptance.ToByteArray(), UpdatedMs = now.ToUnixTimeMilliseconds(), Delivery = "sending" };
        store.SaveOrder(row);
        var how = await courier.DeliverAsync(PeerId.Parse(row.Counterparty), new PeerMessage { Order = new OrderStep { Acceptance = acceptance } }, "order", orderId, cancellationToken);
        row = row with { Delivery = how };
        store.SaveOrder(row);
        return row;
    }

    /// <summary>As buyer: confirms an accepted order was fulfilled; the receipt is then co-signed by both.</summary>
    public async Task<OrderRow> CompleteOrderAsync(string orderId, CancellationToken cancellationToken)
    {
        var row = RequireOrder(orderId, "buyer", "accepted", "complete");
        var now = time.GetUtcNow();
        var completion = Receipts.SignCompletion(identity, SignedEnvelope.Parser.ParseFrom(row.Acceptance), orderId, satisfied: true, now);
        row = row with { State = "completed", Completion = completion.ToByteArray(), UpdatedMs = now.ToUnixTimeMilliseconds(), Delivery = "sending" };
        store.SaveOrder(row);
        var how = await courier.DeliverAsync(PeerId.Parse(row.Counterparty), new PeerMessage { Order = new OrderStep { Completion = completion } }, "order", orderId, cancellationToken);
        row = row with { Delivery = how };
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
                case OrderStep.KindOneofCase.Acceptance:
                {
                    var row = ExistingOrder(step.Acceptance, EnvelopeKinds.OrderAcceptance, OrderAcceptance.Parser, a => a.OrderId, "buyer");
                    var offer = Receipts.VerifyOffer(SignedEnvelope.Parser.ParseFrom(row.Offer), now);
                    Receipts.VerifyAcceptance(step.Acceptance, offer, now);
                    if (linkPeer is { } from && !from.Equals(offer.Seller))
                    {
                        throw Refuse.NotAllowed("only the seller may accept this order");
                    }

                    if (row.State == "offered")
                    {
                        store.SaveOrder(row with { State = "accepted", Acceptance = step.Acceptance.ToByteArray(), UpdatedMs = now.ToUnixTimeMilliseconds() });
                    }

                    return new OrderStepAck { OrderId = row.OrderId, State = row.State == "offered" ? "accepted" : row.State };
                }

                case OrderStep.KindOneofCase.Completion:
                {
                    var row = ExistingOrder(step.Completion, EnvelopeKinds.OrderCompletion, OrderCompletion.Parser, c => c.OrderId, "seller");
                    if (row.Acceptance is null)
                    {
                        throw Refuse.WrongState("this order was never accepted");
                    }

                    var offer = Receipts.VerifyOffer(SignedEnvelope.Parser.ParseFrom(row.Offer), now);
                    Receipts.VerifyCompletion(step.Completion, SignedEnvelope.Parser.ParseFrom(row.Acceptance), offer, now);
                    if (row.State != "completed")
                    {
                        store.SaveOrder(row with { State = "completed", Completion = step.Completion.ToByteArray(), UpdatedMs = now.ToUnixTimeMilliseconds() });
                    }

                    return new OrderStepAck { OrderId = row.OrderId, State = "completed" };
                }

                default:
                    throw Refuse.Invalid("empty order step");
            }
        }
        catch (EnvelopeRejectedException ex)
        {
            throw Refuse.Invalid($"order step refused: {ex.Message}");
        }
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

        budgets.CheckOffer(offer.Buyer);
        store.SaveOrder(new OrderRow(
            offer.Offer.OrderId, "seller", offer.Buyer.ToString(), offer.Offer.ListingId, offer.Offer.Title, ListingRules.Format(offer.Offer.UnitPrice),
            offer.Offer.Quantity, "offered", record.Listing.ContentId, envelope.ToByteArray(), null, null, now.ToUnixTimeMilliseconds(), "received"));
        LogOffer(logger, offer.Buyer, offer.Offer.OrderId);
        return new OrderStepAck { OrderId = offer.Offer.OrderId, State = "offered" };
    }

    private OrderRow ExistingOrder<T>(SignedEnvelope envelope, string kind, MessageParser<T> parser, Func<T, string> orderId, string myRole)
        where T : IMessage<T>
    {
        // Signature and kind are checked in full by the caller against the stored offer; this only finds the order.
        T body;
        try
        {
            body = parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(envelope.Payload).Body);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Refuse.Invalid($"{kind} does not parse: {ex.Message}");
        }

        var row = store.GetOrder(orderId(body));
        return row is not null && row.Role == myRole
            ? row
            : throw Refuse.NotFound($"no order {orderId(body)} here");
    }

    private OrderRow RequireOrder(string orderId, string role, string state, string verb)
    {
        var row = store.GetOrder(orderId) ?? throw Refuse.NotFound($"no order {orderId}: see 'hybrid order list'");
        if (row.Role != role)
        {
            throw Refuse.WrongState($"only the {role} can {verb} an order; you are its {row.Role}");
        }

        return row.State == state
            ? row
            : throw Refuse.WrongState($"order {orderId} is {row.State}; only an {state} order can be {verb}ed");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Offer {OrderId} from {Peer}")]
    private static partial void LogOffer(ILogger logger, PeerId peer, string orderId);
}
