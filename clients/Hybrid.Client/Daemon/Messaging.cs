using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Network;
using Hybrid.Client.Peers;
using Hybrid.Client.Store;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Daemon;

/// <summary>
/// Chats and orders between this peer and others: each message is signed, sent over a peer link
/// (direct, else relayed) and acknowledged once stored on the other side; when the other side is
/// offline it is sealed to its key and left in its mailbox. Incoming messages, from a link or a
/// mailbox, are verified before anything is stored.
/// </summary>
public sealed partial class Messaging(
    PeerIdentity identity,
    LocalStore store,
    PeerDialer dialer,
    SupernodeConnection connection,
    TimeProvider time,
    ILogger logger)
{
    /// <summary>Longest chat message, in characters.</summary>
    public const int MaxChatLength = 4000;

    /// <summary>Delivery of a chat or order step by any path: a link, else the mailbox.</summary>
    public static readonly TimeSpan DeliveryTimeout = TimeSpan.FromSeconds(20);

    private static readonly TimeSpan ChatLifetime = TimeSpan.FromDays(30);

    /// <summary>Sends a chat message; returns it as stored, with how it travelled.</summary>
    public async Task<ChatRow> SendChatAsync(PeerId to, string text, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Length > MaxChatLength)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"a chat message has 1-{MaxChatLength} characters"));
        }

        if (to.Equals(identity.Id))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "that is your own PeerId"));
        }

        var now = time.GetUtcNow();
        var sequence = store.NextSequence(to);
        var message = new ChatMessage { To = to.ToString(), Sequence = sequence, Text = text, SentMs = now.ToUnixTimeMilliseconds() };
        var envelope = SignedEnvelopes.Sign(identity, EnvelopeKinds.Chat, sequence, message, now, now + ChatLifetime);
        store.AddOutgoingChat(to, sequence, text, message.SentMs, "sending");
        var how = await DeliverAsync(to, new PeerMessage { Chat = envelope }, "chat", $"{to}:{sequence}", cancellationToken);
        store.SetChatStatus(to, sequence, how);
        return new ChatRow(0, to.ToString(), "out", sequence, text, message.SentMs, how);
    }

    /// <summary>Checks and stores a chat message; <paramref name="linkPeer"/> is the authenticated sender of a link (null from a mailbox).</summary>
    public ChatAck ReceiveChat(SignedEnvelope envelope, PeerId? linkPeer)
    {
        var verified = Verify(envelope, EnvelopeKinds.Chat, linkPeer);
        var message = verified.Body(ChatMessage.Parser);
        if (message.To != identity.Id.ToString())
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "this message was signed for another peer"));
        }

        if (message.Text.Length is 0 or > MaxChatLength || message.Sequence == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"a chat message has a sequence and 1-{MaxChatLength} characters"));
        }

        if (store.AddIncomingChat(verified.Signer, message.Sequence, message.Text, message.SentMs))
        {
            LogChat(logger, verified.Signer, message.Sequence);
        }

        return new ChatAck { Sequence = message.Sequence };
    }

    /// <summary>As buyer: makes a signed offer for a listing and sends it to the seller.</summary>
    public async Task<OrderRow> CreateOrderAsync(string listingId, uint quantity, CancellationToken cancellationToken)
    {
        if (!ListingRules.IsListingId(listingId, out var error))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, error));
        }

        var record = await VerifiedListingAsync(listingId, cancellationToken);
        if (record.State != ListingState.Active)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"listing {listingId} is {record.State.ToString().ToLowerInvariant()}; it cannot be ordered"));
        }

        var seller = PeerId.Parse(record.Seller);
        if (seller.Equals(identity.Id))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "you cannot order your own listing"));
        }

        quantity = Math.Max(quantity, 1);
        if (quantity > record.Listing.Quantity)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"the listing offers {record.Listing.Quantity}; asked for {quantity}"));
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
        var row = new OrderRow(offer.OrderId, "buyer", record.Seller, listingId, offer.Title, ListingRules.Format(offer.UnitPrice), quantity, "offered", offer.ContentId, envelope.ToByteArray(), null, null, now.ToUnixTimeMilliseconds(), "sending");
        store.SaveOrder(row);
        var how = await DeliverAsync(seller, new PeerMessage { Order = new OrderStep { Offer = envelope } }, "order", offer.OrderId, cancellationToken);
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
        row = row with { State = "accepted", Acceptance = acceptance.ToByteArray(), UpdatedMs = now.ToUnixTimeMilliseconds(), Delivery = "sending" };
        store.SaveOrder(row);
        var how = await DeliverAsync(PeerId.Parse(row.Counterparty), new PeerMessage { Order = new OrderStep { Acceptance = acceptance } }, "order", orderId, cancellationToken);
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
        var how = await DeliverAsync(PeerId.Parse(row.Counterparty), new PeerMessage { Order = new OrderStep { Completion = completion } }, "order", orderId, cancellationToken);
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
                        throw new RpcException(new Status(StatusCode.PermissionDenied, "only the seller may accept this order"));
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
                        throw new RpcException(new Status(StatusCode.FailedPrecondition, "this order was never accepted"));
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
                    throw new RpcException(new Status(StatusCode.InvalidArgument, "empty order step"));
            }
        }
        catch (EnvelopeRejectedException ex)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"order step refused: {ex.Message}"));
        }
    }

    /// <summary>Opens, verifies and applies the items waiting in this peer's mailbox, then acknowledges them.</summary>
    public async Task<int> TakeMailAsync(CancellationToken cancellationToken)
    {
        var taken = await connection.CallAsync((c, o) => c.Mailbox.TakeMailAsync(new TakeMailRequest { Limit = 100 }, o).ResponseAsync, cancellationToken);
        if (taken.Items.Count == 0)
        {
            return 0;
        }

        var done = new AckMailRequest();
        foreach (var item in taken.Items)
        {
            try
            {
                var message = PeerMessage.Parser.ParseFrom(SealedBoxes.Open(item.Item, identity));
                switch (message.KindCase)
                {
                    case PeerMessage.KindOneofCase.Chat:
                        ReceiveChat(message.Chat, null);
                        break;
                    case PeerMessage.KindOneofCase.Order:
                        await ReceiveOrderStepAsync(message.Order, null, cancellationToken);
                        break;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                // Whatever is wrong with one item (unreadable, forged, refused by the rules, or a fault
                // of ours in handling it), it is acknowledged and recorded: keeping it would block the
                // mailbox for good, and the items behind it are honest mail.
                var reason = Refusal(ex);
                LogBadMail(logger, item.ItemId, item.Sender, reason);
                store.AddRefusedMail(new RefusedMailRow(item.ItemId, item.Sender, reason, time.GetUtcNow().ToUnixTimeMilliseconds()));
            }

            done.ItemIds.Add(item.ItemId);
        }

        await connection.CallAsync((c, o) => c.Mailbox.AckMailAsync(done, o).ResponseAsync, cancellationToken);
        return taken.Items.Count;
    }

    /// <summary>Why a mailbox item was refused, in words for the user.</summary>
    private static string Refusal(Exception ex) => ex switch
    {
        System.Security.Cryptography.CryptographicException => "it was not sealed to this peer's key, or was altered on the way",
        InvalidProtocolBufferException => "it opened, but is not a message this peer understands",
        EnvelopeRejectedException rejected => $"its signature or contents were refused: {rejected.Message}",
        RpcException rpc => rpc.Status.Detail,
        _ => $"it could not be handled ({ex.GetType().Name}: {ex.Message})",
    };

    /// <summary>Asks the supernodes which of this peer's stored messages were delivered, and records it.</summary>
    public async Task CheckMailDeliveryAsync(CancellationToken cancellationToken)
    {
        foreach (var group in store.PendingMail().GroupBy(m => m.Recipient))
        {
            var request = new MailStatusRequest { Recipient = group.Key };
            request.ItemIds.AddRange(group.Select(m => m.ItemId));
            var status = await connection.CallAsync((c, o) => c.Mailbox.MailStatusAsync(request, o).ResponseAsync, cancellationToken);
            var delivered = status.Delivered.ToHashSet(StringComparer.Ordinal);
            foreach (var mail in group.Where(m => delivered.Contains(m.ItemId) || !status.Pending.Contains(m.ItemId)))
            {
                var state = delivered.Contains(mail.ItemId) ? "delivered" : "expired";
                if (mail.Kind == "chat")
                {
                    var split = mail.Reference.LastIndexOf(':');
                    store.SetChatStatus(PeerId.Parse(mail.Reference[..split]), ulong.Parse(mail.Reference[(split + 1)..], System.Globalization.CultureInfo.InvariantCulture), state);
                }
                else if (store.GetOrder(mail.Reference) is { } order)
                {
                    store.SaveOrder(order with { Delivery = state });
                }

                store.RemoveMail(mail.ItemId);
            }
        }
    }

    private async Task<OrderStepAck> ReceiveOfferAsync(SignedEnvelope envelope, PeerId? linkPeer, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var offer = Receipts.VerifyOffer(envelope, now);
        if (linkPeer is { } from && !from.Equals(offer.Buyer))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "an offer must come from the buyer who signed it"));
        }

        if (!offer.Seller.Equals(identity.Id))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "this offer is for another seller"));
        }

        if (store.GetOrder(offer.Offer.OrderId) is { } existing)
        {
            return existing.Offer.AsSpan().SequenceEqual(envelope.ToByteArray())
                ? new OrderStepAck { OrderId = existing.OrderId, State = existing.State }
                : throw new RpcException(new Status(StatusCode.AlreadyExists, "another offer with this order id exists"));
        }

        var record = await VerifiedListingAsync(offer.Offer.ListingId, cancellationToken);
        if (record.Seller != identity.Id.ToString() || record.State != ListingState.Active)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"listing {offer.Offer.ListingId} is not an active listing of this seller"));
        }

        if (record.Version != offer.Offer.ListingVersion || !record.Listing.Price.Equals(offer.Offer.UnitPrice) || offer.Offer.Quantity > record.Listing.Quantity)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, "the offer does not match the listing as it stands now (version, price or quantity changed): look it up again"));
        }

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
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{kind} does not parse: {ex.Message}"));
        }

        var row = store.GetOrder(orderId(body));
        return row is not null && row.Role == myRole
            ? row
            : throw new RpcException(new Status(StatusCode.NotFound, $"no order {orderId(body)} here"));
    }

    private OrderRow RequireOrder(string orderId, string role, string state, string verb)
    {
        var row = store.GetOrder(orderId) ?? throw new RpcException(new Status(StatusCode.NotFound, $"no order {orderId}: see 'hybrid order list'"));
        if (row.Role != role)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"only the {role} can {verb} an order; you are its {row.Role}"));
        }

        return row.State == state
            ? row
            : throw new RpcException(new Status(StatusCode.FailedPrecondition, $"order {orderId} is {row.State}; only an {state} order can be {verb}ed"));
    }

    /// <summary>A listing from the supernode holding the session, acted on only as its seller signed it.</summary>
    private async Task<ListingRecord> VerifiedListingAsync(string listingId, CancellationToken cancellationToken)
    {
        var record = await connection.CallAsync((c, o) => c.Listings.GetListingAsync(new GetListingRequest { ListingId = listingId }, o).ResponseAsync, cancellationToken);
        try
        {
            return SupernodeAnswers.CheckListing(record, time.GetUtcNow());
        }
        catch (ForgedAnswerException ex)
        {
            connection.ReportForged(new ForgedAnswerException(ex.Message) { SupernodeUrl = connection.CurrentSupernode });
            throw new RpcException(new Status(StatusCode.Unavailable, $"the supernode answered with a listing that does not verify ({ex.Message}); try again later"));
        }
    }

    private VerifiedEnvelope Verify(SignedEnvelope envelope, string kind, PeerId? expectedSigner)
    {
        try
        {
            return SignedEnvelopes.Verify(envelope, kind, time.GetUtcNow(), expectedSigner);
        }
        catch (EnvelopeRejectedException ex)
        {
            throw new RpcException(new Status(ex.Fault == EnvelopeFault.WrongSigner ? StatusCode.PermissionDenied : StatusCode.InvalidArgument, ex.Message));
        }
    }

    private async Task<string> DeliverAsync(PeerId to, PeerMessage message, string kind, string reference, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(DeliveryTimeout);
        try
        {
            var (_, link) = await dialer.InvokeAsync(
                to,
                async (client, ct) => message.KindCase == PeerMessage.KindOneofCase.Chat
                    ? (object)await client.ChatAsync(message.Chat, cancellationToken: ct)
                    : await client.OrderAsync(message.Order, cancellationToken: ct),
                timeout.Token);
            return link.Path == LinkPath.Direct ? "direct" : "relayed";
        }
        catch (PeerUnreachableException ex) when (ex.InnerException is RpcException { StatusCode: StatusCode.NotFound })
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"{to} is not known on this network (it has never been online): check the PeerId"));
        }
        catch (PeerUnreachableException ex)
        {
            LogToMailbox(logger, to, ex.Message);
        }

        var info = await connection.LookupPeerAsync(to, cancellationToken);
        var deposit = new DepositMailRequest { Recipient = to.ToString(), Item = SealedBoxes.Seal(message.ToByteArray(), info.PublicKey.ToByteArray()) };
        var stored = await connection.CallAsync((c, o) => c.Mailbox.DepositMailAsync(deposit, o).ResponseAsync, cancellationToken);
        store.AddMail(new MailRow(stored.ItemId, to.ToString(), kind, reference));
        return "stored";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Chat {Sequence} from {Peer}")]
    private static partial void LogChat(ILogger logger, PeerId peer, ulong sequence);

    [LoggerMessage(Level = LogLevel.Information, Message = "Offer {OrderId} from {Peer}")]
    private static partial void LogOffer(ILogger logger, PeerId peer, string orderId);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Peer} cannot be reached now ({Reason}); leaving the message in its mailbox")]
    private static partial void LogToMailbox(ILogger logger, PeerId peer, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropped mailbox item {ItemId} from {Sender}: {Reason}")]
    private static partial void LogBadMail(ILogger logger, string itemId, string sender, string reason);
}
