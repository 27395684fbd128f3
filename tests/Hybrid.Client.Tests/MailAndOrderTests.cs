using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Chat;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Mailbox;
using Hybrid.Client.Orders;
using Hybrid.Client.Store;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hybrid.Client.Tests;

/// <summary>
/// The client's chats, orders and mailbox in process, on a real store, against a scripted
/// supernode: the mail inbox's refusals, and the order steps each side may and may not take.
/// </summary>
public sealed class MailAndOrderTests : IAsyncLifetime, IDisposable
{
    private readonly TempDir _temp = new();
    private readonly PeerIdentity _me = PeerIdentity.Generate();
    private readonly Mailbox _mailbox = new();
    private LoopbackGrpcServer _supernode = null!;
    private SupernodeConnection _connection = null!;
    private LocalStore _store = null!;
    private PeerBudgets _budgets = null!;
    private ListingLookups _listings = null!;
    private System.Security.Cryptography.X509Certificates.X509Certificate2 _certificate = null!;
    private PeerDialer _dialer = null!;

    public async Task InitializeAsync()
    {
        _supernode = await LoopbackGrpcServer.StartAsync<ScriptedSession, ScriptedMailbox>(s => s.AddSingleton(_mailbox));
        _connection = new SupernodeConnection(_me, new SupernodeConnectionOptions { Seeds = [_supernode.Url], DisplayName = "Me", ConnectTimeout = TimeSpan.FromSeconds(2) });
        _store = new LocalStore(_temp.Sub("store.db"));
        _budgets = new PeerBudgets(_store, new PeerBudgetOptions());
        _listings = new ListingLookups(_connection);
        _certificate = _me.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        _dialer = new PeerDialer(_me, _certificate, _connection, privateMode: true, NullLogger.Instance);
    }

    public async Task DisposeAsync()
    {
        _dialer.Dispose();
        _certificate.Dispose();
        _listings.Dispose();
        _budgets.Dispose();
        _store.Dispose();
        await _connection.DisposeAsync();
        await _supernode.DisposeAsync();
    }

    public void Dispose()
    {
        _me.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task UnreadableItemsOfEveryKindAreAcknowledgedAndRecordedAndTheHonestOneIsStored()
    {
        using var friend = PeerIdentity.Generate();
        using var other = PeerIdentity.Generate();
        var now = DateTimeOffset.UtcNow;
        SignedEnvelope Chat(PeerIdentity from, ulong sequence, string text) =>
            SignedEnvelopes.Sign(from, EnvelopeKinds.Chat, sequence, new ChatMessage { To = _me.Id.ToString(), Sequence = sequence, Text = text, SentMs = now.ToUnixTimeMilliseconds() }, now, now.AddDays(1));
        var forged = Chat(friend, 9, "forged");
        forged.Signature = ByteString.CopyFrom(new byte[64]);
        _mailbox.Items.AddRange(
        [
            Item("sealed-elsewhere", SealedBoxes.Seal("not for you"u8, other.PublicKey)),
            Item("garbage", SealedBoxes.Seal([0x0F, 0x01, 0x02], _me.PublicKey)),
            Item("forged", SealedBoxes.Seal(new PeerMessage { Chat = forged }.ToByteArray(), _me.PublicKey)),
            Item("empty", SealedBoxes.Seal(new PeerMessage().ToByteArray(), _me.PublicKey)),
            Item("honest", SealedBoxes.Seal(new PeerMessage { Chat = Chat(friend, 1, "see you at noon") }.ToByteArray(), _me.PublicKey)),
        ]);
        _connection.Start();
        await _connection.WaitForSessionAsync().WaitAsync(TimeSpan.FromSeconds(20));

        var taken = await Inbox().TakeAsync(CancellationToken.None);

        Assert.Equal(5, taken);
        Assert.Equal(["sealed-elsewhere", "garbage", "forged", "empty", "honest"], _mailbox.Acknowledged);
        Assert.Equal("see you at noon", Assert.Single(_store.ReadChats(null, 0)).Text);
        var refused = _store.RefusedMail(10).ToDictionary(r => r.ItemId);
        Assert.Equal(4, refused.Count);
        Assert.Contains("not sealed to this peer's key", refused["sealed-elsewhere"].Reason, StringComparison.Ordinal);
        Assert.Contains("not a message this peer understands", refused["garbage"].Reason, StringComparison.Ordinal);
        Assert.Contains("signature", refused["forged"].Reason, StringComparison.Ordinal);
        Assert.Contains("neither a chat nor an order step", refused["empty"].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EachSideTakesOnlyItsOwnStepsInOrder()
    {
        using var seller = PeerIdentity.Generate();
        var orders = Orders();
        var now = DateTimeOffset.UtcNow;
        var body = new OrderOffer { OrderId = ListingRules.NewListingId(), Seller = seller.Id.ToString(), ListingId = ListingRules.NewListingId(), ListingVersion = 1, UnitPrice = ListingRules.ParseMoney("5", "EUR"), Quantity = 1, Title = "Mug" };
        var offer = Receipts.SignOffer(_me, body, now);
        _store.SaveOrder(new OrderRow(body.OrderId, "buyer", seller.Id.ToString(), body.ListingId, body.Title, "5.00 EUR", 1, "offered", string.Empty, offer.ToByteArray(), null, null, now.ToUnixTimeMilliseconds(), "direct"));

        // The buyer may neither accept nor complete an order the seller has not accepted.
        Assert.Equal(Refusal.WrongState, (await Assert.ThrowsAsync<RefusedException>(() => orders.AcceptOrderAsync(body.OrderId, CancellationToken.None))).Reason);
        Assert.Equal(Refusal.WrongState, (await Assert.ThrowsAsync<RefusedException>(() => orders.CompleteOrderAsync(body.OrderId, CancellationToken.None))).Reason);

        // Only the seller's acceptance moves it on; one signed by the buyer's friend is refused.
        using var stranger = PeerIdentity.Generate();
        var impostor = Receipts.SignAcceptance(stranger, offer, body.OrderId, now);
        var refused = await Assert.ThrowsAsync<RefusedException>(() => orders.ReceiveOrderStepAsync(new OrderStep { Acceptance = impostor }, stranger.Id, CancellationToken.None));
        Assert.Contains(refused.Reason, new[] { Refusal.Invalid, Refusal.NotAllowed });
        Assert.Equal("offered", _store.GetOrder(body.OrderId)!.State);

        var acceptance = Receipts.SignAcceptance(seller, offer, body.OrderId, now);
        Assert.Equal("accepted", (await orders.ReceiveOrderStepAsync(new OrderStep { Acceptance = acceptance }, seller.Id, CancellationToken.None)).State);
        Assert.Equal("accepted", (await orders.ReceiveOrderStepAsync(new OrderStep { Acceptance = acceptance }, seller.Id, CancellationToken.None)).State);
        Assert.Equal("accepted", _store.GetOrder(body.OrderId)!.State);

        // An order nobody knows here is NotFound, with its id.
        Assert.Equal(Refusal.NotFound, (await Assert.ThrowsAsync<RefusedException>(() => orders.AcceptOrderAsync("no-such-order", CancellationToken.None))).Reason);
    }

    [Fact]
    public async Task ForgedOrMisdeliveredProgressStepsVerdictsAndDisputeCasesAreRefusedAndChangeNothing()
    {
        using var seller = PeerIdentity.Generate();
        using var mediator = PeerIdentity.Generate();
        using var stranger = PeerIdentity.Generate();
        var orders = Orders();
        var now = DateTimeOffset.UtcNow;
        var body = new OrderOffer { OrderId = ListingRules.NewListingId(), Seller = seller.Id.ToString(), ListingId = ListingRules.NewListingId(), ListingVersion = 1, UnitPrice = ListingRules.ParseMoney("5", "EUR"), Quantity = 1, Title = "Lamp", Mediator = mediator.Id.ToString() };
        var offer = Receipts.SignOffer(_me, body, now);
        _store.SaveOrder(new OrderRow(body.OrderId, "buyer", seller.Id.ToString(), body.ListingId, body.Title, "5.00 EUR", 1, "offered", string.Empty, offer.ToByteArray(), null, null, now.ToUnixTimeMilliseconds(), "direct"));
        var acceptance = Receipts.SignAcceptance(seller, offer, body.OrderId, now);
        Assert.Equal("accepted", (await orders.ReceiveOrderStepAsync(new OrderStep { Acceptance = acceptance }, seller.Id, CancellationToken.None)).State);

        async Task<RefusedException> Refused(OrderStep step, PeerId from) =>
            await Assert.ThrowsAsync<RefusedException>(() => orders.ReceiveOrderStepAsync(step, from, CancellationToken.None));

        // A step signed by a stranger; the seller's step relayed by someone else; a verdict with no dispute.
        var strangers = Receipts.SignProgress(stranger, acceptance, new OrderProgress { OrderId = body.OrderId, Cancelled = new OrderCancelled { Reason = "x" } }, now);
        Assert.Contains("not a party", (await Refused(new OrderStep { Progress = strangers }, stranger.Id)).Message, StringComparison.Ordinal);
        var shipped = Receipts.SignProgress(seller, acceptance, new OrderProgress { OrderId = body.OrderId, Fulfilled = new OrderFulfilled { Carrier = "DHL" } }, now);
        Assert.Equal(Refusal.NotAllowed, (await Refused(new OrderStep { Progress = shipped }, stranger.Id)).Reason);
        var verdict = Receipts.SignVerdict(mediator, acceptance, new OrderVerdict { OrderId = body.OrderId, Outcome = "seller" }, now);
        Assert.Contains("needs a dispute", (await Refused(new OrderStep { Verdict = verdict }, mediator.Id)).Message, StringComparison.Ordinal);
        // A step that says nothing, and one for an order this peer never saw.
        var empty = Receipts.SignProgress(seller, acceptance, new OrderProgress { OrderId = body.OrderId }, now);
        Assert.Contains("says nothing", (await Refused(new OrderStep { Progress = empty }, seller.Id)).Message, StringComparison.Ordinal);
        var elsewhere = Receipts.SignProgress(seller, acceptance, new OrderProgress { OrderId = ListingRules.NewListingId(), Paid = new OrderPaid() }, now);
        Assert.Equal(Refusal.NotFound, (await Refused(new OrderStep { Progress = elsewhere }, seller.Id)).Reason);
        Assert.Equal("accepted", _store.GetOrder(body.OrderId)!.State);

        // A dispute case for an order that names another mediator is not filed here.
        var chain = new Receipt { Offer = offer, Acceptance = acceptance };
        chain.Steps.Add(Receipts.SignProgress(seller, acceptance, new OrderProgress { OrderId = body.OrderId, Disputed = new OrderDisputed { Reason = "unpaid" } }, now));
        var notMine = await Refused(new OrderStep { DisputeCase = chain }, seller.Id);
        Assert.Equal(Refusal.NotAllowed, notMine.Reason);
        Assert.Contains("another mediator", notMine.Message, StringComparison.Ordinal);
        Assert.Equal("buyer", Assert.Single(_store.ListOrders()).Role);
    }

    private static MailItem Item(string id, SealedItem item) => new() { ItemId = id, Sender = "someone", Item = item };

    private MailInbox Inbox()
    {
        var orders = Orders();
        var chats = new ChatService(_me, _store, Courier(), _budgets, TimeProvider.System, NullLogger<ChatService>.Instance);
        return new MailInbox(_me, _store, _connection, chats, orders, TimeProvider.System, NullLogger<MailInbox>.Instance);
    }

    private OrderService Orders() => new(_me, _store, Courier(), _listings, _budgets, new ListingStock(_me, _connection, _listings, TimeProvider.System), TimeProvider.System, NullLogger<OrderService>.Instance);

    private Courier Courier() => new(_store, _dialer, _connection, NullLogger<Courier>.Instance);

    private sealed class Mailbox
    {
        public List<MailItem> Items { get; } = [];

        public List<string> Acknowledged { get; } = [];
    }

    private sealed class ScriptedMailbox(Mailbox mailbox) : MailboxApi.MailboxApiBase
    {
        public override Task<TakeMailResponse> TakeMail(TakeMailRequest request, ServerCallContext context)
        {
            var response = new TakeMailResponse();
            lock (mailbox)
            {
                response.Items.AddRange(mailbox.Items.Where(i => !mailbox.Acknowledged.Contains(i.ItemId)));
            }

            return Task.FromResult(response);
        }

        public override Task<AckMailResponse> AckMail(AckMailRequest request, ServerCallContext context)
        {
            lock (mailbox)
            {
                mailbox.Acknowledged.AddRange(request.ItemIds);
            }

            return Task.FromResult(new AckMailResponse { Removed = request.ItemIds.Count });
        }
    }

    private sealed class ScriptedSession : DirectoryApi.DirectoryApiBase
    {
        public override Task<ListSupernodesResponse> ListSupernodes(ListSupernodesRequest request, ServerCallContext context) =>
            Task.FromResult(new ListSupernodesResponse());

        public override async Task Session(IAsyncStreamReader<SessionClientMessage> requestStream, IServerStreamWriter<SessionServerMessage> responseStream, ServerCallContext context)
        {
            await responseStream.WriteAsync(new SessionServerMessage { Challenge = new SessionChallenge { Nonce = ByteString.CopyFrom(new byte[32]), SupernodeId = "sn-scripted" } });
            if (!await requestStream.MoveNext())
            {
                return;
            }

            await responseStream.WriteAsync(new SessionServerMessage { Welcome = new SessionWelcome { PeerId = "x", SessionToken = "t", HeartbeatIntervalMs = 200, SessionTimeoutMs = 5000 } });
            while (await requestStream.MoveNext())
            {
                await responseStream.WriteAsync(new SessionServerMessage { HeartbeatAck = new HeartbeatAck { Sequence = requestStream.Current.Heartbeat.Sequence } });
            }
        }
    }
}
