using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Orders;
using Hybrid.Client.Store;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Hybrid.Client.Tests;

/// <summary>The peer host's budgets and the cached listing look-ups, on a real store in a temporary home.</summary>
public sealed class PeerBudgetTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void StrangersShareOneStoreQuotaAndAnsweringSomeoneGivesThemAContactsRoom()
    {
        using var store = new LocalStore(_temp.Sub("store.db"));
        using var budgets = new PeerBudgets(store, new PeerBudgetOptions { StrangerStoredChats = 3, AllStrangersStoredChats = 5 });
        var (a, b) = (PeerId.Parse(PeerIdentity.Generate().Id.ToString()), PeerId.Parse(PeerIdentity.Generate().Id.ToString()));

        ulong sequence = 0;
        bool Store(PeerId from) => budgets.StoreChat(from, () => store.AddIncomingChat(from, ++sequence, "hi", 0));
        Assert.True(Store(a) && Store(a) && Store(a));
        var full = Assert.Throws<RefusedException>(() => Store(a));
        Assert.Equal(Refusal.Exhausted, full.Reason);
        Assert.True(Store(b) && Store(b));
        Assert.Contains("new contacts", Assert.Throws<RefusedException>(() => Store(b)).Message, StringComparison.Ordinal);
        Assert.Equal(2, budgets.Refused);

        // The user writes to a: it becomes a contact, and its messages leave the strangers' pool.
        budgets.AddContact(a);
        Assert.True(Store(a));
        Assert.True(Store(b));

        // After a restart the counts come back from the store.
        using var again = new PeerBudgets(store, new PeerBudgetOptions { StrangerStoredChats = 3, AllStrangersStoredChats = 5 });
        Assert.Throws<RefusedException>(() => again.StoreChat(b, () => store.AddIncomingChat(b, ++sequence, "hi", 0)));
    }

    [Fact]
    public void OutOfRangeBudgetsAreRefusedWithTheirNames()
    {
        using var store = new LocalStore(_temp.Sub("store.db"));
        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => new PeerBudgets(store, new PeerBudgetOptions { StrangerOpenOffers = 0 }));
        Assert.Contains(nameof(PeerBudgetOptions.StrangerOpenOffers), refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OrdersAndChatsAreReadAPageAtATimeFromACursor()
    {
        using var store = new LocalStore(_temp.Sub("store.db"));
        var peer = PeerIdentity.Generate().Id;
        for (var i = 1; i <= 30; i++)
        {
            store.AddIncomingChat(peer, (ulong)i, $"message {i}", i);
            store.SaveOrder(new OrderRow($"order-{i:D2}", "seller", peer.ToString(), "l", "t", "1.00 EUR", 1, "offered", string.Empty, [], null, null, 1000 + (i / 2), "received"));
        }

        var newest = store.ReadChats(null, 0, 10, newest: true);
        Assert.Equal(Enumerable.Range(21, 10).Select(i => $"message {i}"), newest.Select(c => c.Text));
        Assert.Equal(["message 1", "message 2"], store.ReadChats(peer, 0, 2).Select(c => c.Text));
        Assert.Empty(store.ReadChats(peer, newest[^1].RowId));

        // Pages of orders meet every order once, the most recently changed first, ties broken by id.
        var seen = new List<string>();
        long? beforeMs = null;
        string? beforeId = null;
        while (true)
        {
            var page = store.ListOrders(7, beforeMs, beforeId);
            seen.AddRange(page.Select(o => o.OrderId));
            if (page.Count < 7)
            {
                break;
            }

            (beforeMs, beforeId) = (page[^1].UpdatedMs, page[^1].OrderId);
        }

        Assert.Equal(store.ListOrders().Select(o => o.OrderId), seen);
        Assert.Equal(30, seen.Distinct().Count());
    }

    [Fact]
    public async Task AFloodOfOffersForOneListingCostsOneLookUpAndAForgedListingIsNeverUsed()
    {
        using var seller = PeerIdentity.Generate();
        var listing = ListingFactory.Listing("Oak chair");
        var record = new ListingRecord { Envelope = ListingFactory.Sign(seller, listing), Listing = listing, Seller = seller.Id.ToString(), Version = 1, State = ListingState.Active };
        var served = new Listings(record);
        await using var server = await LoopbackGrpcServer.StartAsync<Listings>(s => s.AddSingleton(served));
        using var me = PeerIdentity.Generate();
        await using var connection = new SupernodeConnection(me, new SupernodeConnectionOptions { Seeds = [server.Url], DisplayName = "Me" });
        using var lookups = new ListingLookups(connection);

        var answers = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => lookups.GetAsync(listing.ListingId, fresh: false, CancellationToken.None)));

        Assert.All(answers, a => Assert.Equal("Oak chair", a.Listing.Title));
        Assert.Equal(1, served.Calls);
        await lookups.GetAsync(listing.ListingId, fresh: true, CancellationToken.None);
        Assert.Equal(2, served.Calls);

        // The supernode now alters the title under the seller's signature: the answer is refused, not cached.
        served.Record.Listing.Title = "Oak chair (cheap!)";
        served.Record.Envelope = ListingFactory.Sign(PeerIdentity.Generate(), listing);
        var refused = await Assert.ThrowsAsync<RefusedException>(() => lookups.GetAsync(listing.ListingId, fresh: true, CancellationToken.None));
        Assert.Equal(Refusal.Unavailable, refused.Reason);
        Assert.Equal(1, connection.ForgedAnswers);
    }

    private sealed class Listings(ListingRecord record) : ListingsApi.ListingsApiBase
    {
        private int _calls;

        public ListingRecord Record { get; } = record;

        public int Calls => Volatile.Read(ref _calls);

        public override Task<ListingRecord> GetListing(GetListingRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromResult(Record);
        }
    }
}
