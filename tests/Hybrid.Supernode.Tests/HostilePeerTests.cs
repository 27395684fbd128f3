using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Home;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using static Hybrid.Supernode.Tests.Infrastructure.Cli;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A hostile peer, with as many fresh keys as it likes, dials a user's daemon directly and floods it
/// with chats and offers. The daemon keeps to its budgets: what it stores stays within its quotas,
/// refusals are readable statuses, and its owner's own work (orders, searches, contacts) goes on.
/// </summary>
public sealed class HostilePeerTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task FloodsOfChatsAndOffersFromStrangersStayWithinTheVictimsQuotasAndItsOwnWorkGoesOn()
    {
        var victim = await InitAsync("victim", "Vera", new PeerBudgetOptions
        {
            // Rates high enough that the storage quotas are what this test meets.
            StrangerCallsPerMinute = 60_000,
            AllStrangersCallsPerMinute = 60_000,
            StrangerStoredChats = 20,
            AllStrangersStoredChats = 50,
            StrangerOpenOffers = 3,
            AllOpenOffers = 10,
        });
        var listingId = Json(await Ok(victim.RunAsync("listing", "publish", "--title", "Walnut chopping board", "--price", "25.00", "--currency", "EUR", "--supernode", fixture.Node.GrpcUrl, "--json"))).GetProperty("listingId").GetString()!;
        var listing = await fixture.Node.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listingId });
        await using var daemon = await DaemonProcess.StartAsync(victim, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var status = await daemon.WaitInSessionAsync();
        var endpoint = status.GetProperty("endpoints")[0].GetString()!;
        var victimId = PeerId.Parse(status.GetProperty("peerId").GetString()!);

        // One stranger sends 40 messages: 20 are kept, the rest refused with a reason it can read.
        using var first = PeerIdentity.Generate();
        var firstResults = await SendChatsAsync(first, victimId, endpoint, 40);
        Assert.Equal(20, firstResults.Count(r => r is null));
        var refusal = firstResults.First(r => r is not null)!;
        Assert.Equal(StatusCode.ResourceExhausted, refusal.StatusCode);
        Assert.Contains("at most 20 messages from someone it has not dealt with", refusal.Status.Detail, StringComparison.Ordinal);

        // Fresh keys do not buy more room: all strangers together share 50.
        var accepted = 20;
        for (var i = 0; i < 10; i++)
        {
            using var fresh = PeerIdentity.Generate();
            var results = await SendChatsAsync(fresh, victimId, endpoint, 10);
            Assert.All(results.Where(r => r is not null), r => Assert.Equal(StatusCode.ResourceExhausted, r!.StatusCode));
            accepted += results.Count(r => r is null);
        }

        Assert.Equal(50, accepted);

        // Offers: three unanswered ones per stranger, ten in all.
        var offered = 0;
        var offerers = new List<PeerIdentity>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                var buyer = PeerIdentity.Generate();
                offerers.Add(buyer);
                var results = await SendOffersAsync(buyer, victimId, listingId, listing, endpoint, 5);
                Assert.True(results.Count(r => r is null) <= 3, "no stranger gets more than three unanswered offers kept");
                Assert.All(results.Where(r => r is not null), r => Assert.Equal(StatusCode.ResourceExhausted, r!.StatusCode));
                offered += results.Count(r => r is null);
            }
        }
        finally
        {
            offerers.ForEach(o => o.Dispose());
        }

        Assert.Equal(10, offered);

        // What the victim holds is exactly what the quotas allowed, and its commands still work.
        Assert.Equal(50, Json(await Ok(victim.RunAsync("chat", "read", "--last", "1000", "--json"))).GetArrayLength());
        Assert.Equal(10, Json(await Ok(victim.RunAsync("order", "list", "--all", "--json"))).GetArrayLength());
        var after = Json(await Ok(victim.RunAsync("status", "--json")));
        Assert.True(after.GetProperty("peerCallsRefused").GetInt64() >= 40 - 20 + 100 - 30 + 25 - 10, after.ToString());
        Assert.True(File.Exists(after.GetProperty("logFile").GetString()), "the daemon writes the log file its status names");
        var found = Json(await Ok(victim.RunAsync("search", "walnut board", "--supernode", fixture.Node.GrpcUrl, "--json")));
        Assert.Contains(found.GetProperty("listings").EnumerateArray(), h => h.GetProperty("listingId").GetString() == listingId);

        // Someone the victim writes to is a contact: its messages are kept although strangers' room is full.
        using var friend = PeerIdentity.Generate();
        await using (await LiveSession.OpenAsync(fixture.Node.Client, friend, TimeSpan.FromMilliseconds(500)))
        {
            await Ok(victim.RunAsync("chat", "send", friend.Id.ToString(), "write to me here"));
        }

        Assert.All(await SendChatsAsync(friend, victimId, endpoint, 5), Assert.Null);
    }

    [Fact]
    public async Task AStrangerSendingFastIsSlowedWithAReadableStatusAndAHintWhenToRetry()
    {
        var victim = await InitAsync("victim", "Vic", budgets: null);
        await using var daemon = await DaemonProcess.StartAsync(victim, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var status = await daemon.WaitInSessionAsync();
        var victimId = PeerId.Parse(status.GetProperty("peerId").GetString()!);
        using var stranger = PeerIdentity.Generate();

        var results = await SendChatsAsync(stranger, victimId, status.GetProperty("endpoints")[0].GetString()!, 30);

        // The default stranger budget is 20 a minute with a burst of 5: a few pass, the rest wait.
        var passed = results.Count(r => r is null);
        Assert.InRange(passed, 1, 7);
        var slowed = results.First(r => r is not null)!;
        Assert.Equal(StatusCode.ResourceExhausted, slowed.StatusCode);
        Assert.Contains("few messages a minute", slowed.Status.Detail, StringComparison.Ordinal);
        Assert.True(long.TryParse(slowed.Trailers.GetValue("retry-after-ms"), out var wait) && wait > 0, "the refusal says how long to wait");
        Assert.Equal(passed, Json(await Ok(victim.RunAsync("chat", "read", "--json"))).GetArrayLength());
    }

    [Fact]
    public async Task APeerCannotHoldTwoPunchesWithADaemonAndALoopbackDaemonDeclinesPunchesReadably()
    {
        var victim = await InitAsync("victim", "Vic", budgets: null);
        await using var daemon = await DaemonProcess.StartAsync(victim, "--supernode", fixture.Node.GrpcUrl, "--listen", "0.0.0.0:0");
        var status = await daemon.WaitInSessionAsync();
        var victimId = PeerId.Parse(status.GetProperty("peerId").GetString()!);
        var endpoint = status.GetProperty("endpoints")[0].GetString()!;

        // A registered stranger (the victim looks the caller up before it punches).
        using var stranger = PeerIdentity.Generate();
        using var certificate = stranger.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        await using var connection = new SupernodeConnection(stranger, new SupernodeConnectionOptions { Seeds = [fixture.Node.GrpcUrl], DisplayName = "stranger" });
        connection.Start();
        await connection.WaitForSessionAsync().WaitAsync(TimeSpan.FromSeconds(30));
        using var dialer = new PeerDialer(stranger, certificate, connection, privateMode: false, NullLogger.Instance);

        var second = await dialer.CallDirectAsync(endpoint, victimId, async (client, ct) =>
        {
            using var first = client.Punch(cancellationToken: ct);
            await first.RequestStream.WriteAsync(new PunchMessage { Connect = new PunchConnect { Attempt = 1 } }, ct);
            Assert.True(await first.ResponseStream.MoveNext(ct), "the first punch was not answered");
            Assert.Equal(PunchMessage.KindOneofCase.Connect, first.ResponseStream.Current.KindCase);

            // The first is still open (no sync yet): a second one is refused, not queued.
            using var again = client.Punch(cancellationToken: ct);
            await again.RequestStream.WriteAsync(new PunchMessage { Connect = new PunchConnect { Attempt = 1 } }, ct);
            return await Assert.ThrowsAsync<RpcException>(async () => await again.ResponseStream.MoveNext(ct));
        }, CancellationToken.None);
        Assert.Equal(StatusCode.ResourceExhausted, second.StatusCode);
        Assert.Contains("already punching with you", second.Status.Detail, StringComparison.Ordinal);

        // A daemon whose host listens on loopback takes no direct links at all, and says so.
        var local = await InitAsync("local", "Lou", budgets: null);
        await using var localDaemon = await DaemonProcess.StartAsync(local, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var localStatus = await localDaemon.WaitInSessionAsync();
        var declined = await dialer.CallDirectAsync(localStatus.GetProperty("endpoints")[0].GetString()!, PeerId.Parse(localStatus.GetProperty("peerId").GetString()!), async (client, ct) =>
        {
            using var punch = client.Punch(cancellationToken: ct);
            await punch.RequestStream.WriteAsync(new PunchMessage { Connect = new PunchConnect { Attempt = 1 } }, ct);
            return await Assert.ThrowsAsync<RpcException>(async () => await punch.ResponseStream.MoveNext(ct));
        }, CancellationToken.None);
        Assert.Equal(StatusCode.FailedPrecondition, declined.StatusCode);
        Assert.Contains("does not take direct connections", declined.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>Sends <paramref name="count"/> chats over one direct link; null where one was kept, the status where refused.</summary>
    private async Task<List<RpcException?>> SendChatsAsync(PeerIdentity from, PeerId to, string endpoint, int count)
    {
        var now = DateTimeOffset.UtcNow;
        return await CallAsync(from, to, endpoint, count, (client, i, ct) =>
        {
            var chat = SignedEnvelopes.Sign(from, EnvelopeKinds.Chat, (ulong)i + 1, new ChatMessage { To = to.ToString(), Sequence = (ulong)i + 1, Text = $"buy my stuff #{i}", SentMs = now.ToUnixTimeMilliseconds() }, now, now.AddDays(1));
            return client.ChatAsync(chat, cancellationToken: ct).ResponseAsync;
        });
    }

    /// <summary>Sends <paramref name="count"/> valid offers for <paramref name="listing"/>; null where one was kept, the status where refused.</summary>
    private async Task<List<RpcException?>> SendOffersAsync(PeerIdentity from, PeerId to, string listingId, ListingRecord listing, string endpoint, int count)
    {
        var now = DateTimeOffset.UtcNow;
        return await CallAsync(from, to, endpoint, count, (client, _, ct) =>
        {
            var offer = Receipts.SignOffer(from, new OrderOffer
            {
                OrderId = Hybrid.Protocol.Listings.ListingRules.NewListingId(),
                Seller = to.ToString(),
                ListingId = listingId,
                ListingVersion = listing.Version,
                UnitPrice = listing.Listing.Price,
                Quantity = 1,
                Title = listing.Listing.Title,
            }, now);
            return client.OrderAsync(new OrderStep { Offer = offer }, cancellationToken: ct).ResponseAsync;
        });
    }

    private async Task<List<RpcException?>> CallAsync<T>(PeerIdentity from, PeerId to, string endpoint, int count, Func<PeerLink.PeerLinkClient, int, CancellationToken, Task<T>> call)
    {
        using var certificate = from.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        await using var connection = new SupernodeConnection(from, new SupernodeConnectionOptions { Seeds = [fixture.Node.GrpcUrl], DisplayName = "stranger" });
        using var dialer = new PeerDialer(from, certificate, connection, privateMode: false, NullLogger.Instance);
        return await dialer.CallDirectAsync(endpoint, to, async (client, ct) =>
        {
            var results = new List<RpcException?>();
            for (var i = 0; i < count; i++)
            {
                try
                {
                    await call(client, i, ct);
                    results.Add(null);
                }
                catch (RpcException ex)
                {
                    results.Add(ex);
                }
            }

            return results;
        }, CancellationToken.None);
    }

    private async Task<CliRunner> InitAsync(string home, string name, PeerBudgetOptions? budgets)
    {
        var user = new CliRunner(_temp.Sub(home));
        await Ok(user.RunAsync("init", "--name", name));
        if (budgets is not null)
        {
            var peerHome = new PeerHome(_temp.Sub(home));
            var settings = peerHome.LoadSettings();
            settings.Budgets = budgets;
            peerHome.SaveSettings(settings);
        }

        return user;
    }
}
