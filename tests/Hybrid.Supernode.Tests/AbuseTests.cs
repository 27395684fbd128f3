using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A hostile client tries each class of abuse against an embedded supernode with default limits,
/// while an honest peer uses it: the attacker gets the specific status, the honest peer's session,
/// mail and searches go on.
/// </summary>
public sealed class AbuseTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private Protocol.Api.SupernodeClients Client => fixture.Node.Client;

    private Protocol.Api.SupernodeClients From(string address, out GrpcChannel channel)
    {
        channel = LoopbackSource.Channel(fixture.Node.GrpcUrl, address);
        return new Protocol.Api.SupernodeClients(channel);
    }

    [Fact]
    public async Task AReplayedListingCostsTheReplayerNeverTheSeller()
    {
        using var seller = PeerIdentity.Generate();
        await using var session = await LiveSession.OpenAsync(Client, seller, Heartbeat);
        var listing = ListingFactory.Listing("Replay target lamp");
        await Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, listing));
        var published = (await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = listing.ListingId })).Envelope;

        // Four addresses replay the seller's own envelope as fast as they can.
        var channels = new List<GrpcChannel>();
        var refused = 0;
        var flood = Enumerable.Range(2, 4).Select(async i =>
        {
            var attacker = From($"127.0.0.{i}", out var channel);
            lock (channels)
            {
                channels.Add(channel);
            }

            for (var n = 0; n < 200; n++)
            {
                try
                {
                    await attacker.Listings.PublishListingAsync(published);
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted)
                {
                    Interlocked.Increment(ref refused);
                }
            }
        }).ToList();
        var honest = session.AssertAliveForAsync(6, Patience);
        await Task.WhenAll(flood);
        await honest;

        Assert.True(refused > 0, "the replaying addresses were never rate limited");
        // The seller's own budget is untouched: it can still publish a new version at once.
        var update = await Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, listing, version: 2));
        Assert.Equal(2UL, update.Version);
        Assert.Null(session.Ended);
        foreach (var channel in channels)
        {
            channel.Dispose();
        }
    }

    [Fact]
    public async Task OnlySignedBytesAreStoredAndServed()
    {
        using var attacker = PeerIdentity.Generate();
        using var seller = PeerIdentity.Generate();
        var padding = new byte[200 * 1024];
        Random.Shared.NextBytes(padding);

        // Unknown fields beside the signed parts: 200 KB the signer never signed.
        var outside = ListingFactory.Sign(attacker, ListingFactory.Listing("Padded outside"));
        var smuggled = SignedEnvelope.Parser.ParseFrom([.. outside.ToByteArray(), .. Field(1000, padding)]);
        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.Listings.PublishListingAsync(smuggled).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("fields beside payload", ex.Status.Detail, StringComparison.Ordinal);

        // Unknown fields inside the body, signed: still refused, the supernode stores only what it understands.
        var listing = ListingFactory.Listing("Padded inside");
        var now = DateTimeOffset.UtcNow;
        var payload = new EnvelopePayload
        {
            Kind = EnvelopeKinds.Listing,
            Version = 1,
            IssuedAtMs = now.ToUnixTimeMilliseconds(),
            ExpiresAtMs = now.AddDays(1).ToUnixTimeMilliseconds(),
            Body = ByteString.CopyFrom([.. listing.ToByteArray(), .. Field(1000, padding[..1000])]),
        }.ToByteArray();
        var inside = new SignedEnvelope { Payload = ByteString.CopyFrom(payload), SignerPublicKey = ByteString.CopyFrom(attacker.PublicKey), Signature = ByteString.CopyFrom(attacker.Sign(payload)) };
        ex = await Assert.ThrowsAsync<RpcException>(() => Client.Listings.PublishListingAsync(inside).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);

        // A creation time in the future would pin a listing to the top of "newest".
        var future = ListingFactory.Listing("From the future");
        future.CreatedMs = DateTimeOffset.UtcNow.AddYears(50).ToUnixTimeMilliseconds();
        ex = await Assert.ThrowsAsync<RpcException>(() => Client.Listings.PublishListingAsync(ListingFactory.Sign(attacker, future)).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("created_ms", ex.Status.Detail, StringComparison.Ordinal);

        // What the honest seller signed comes back byte for byte.
        var honest = ListingFactory.Sign(seller, ListingFactory.Listing("Honest teapot"));
        var accepted = await Client.Listings.PublishListingAsync(honest);
        var served = await Client.Listings.GetListingAsync(new GetListingRequest { ListingId = accepted.ListingId });
        Assert.Equal(honest.ToByteArray(), served.Envelope.ToByteArray());
    }

    [Fact]
    public async Task AMailboxFloodNeitherFillsTheMailboxNorStopsItsRecipientsMail()
    {
        using var victim = PeerIdentity.Generate();
        using var attacker = PeerIdentity.Generate();
        using var friend = PeerIdentity.Generate();
        await using var attackerSession = await LiveSession.OpenAsync(Client, attacker, Heartbeat);
        await using var friendSession = await LiveSession.OpenAsync(Client, friend, Heartbeat);
        // The victim is known to the network (it has been online) and is offline during the attack.
        await (await LiveSession.OpenAsync(Client, victim, Heartbeat)).DisposeAsync();

        // One item over the per-item cap, then items just under it until the sender's share is spent.
        var tooBig = await Assert.ThrowsAsync<RpcException>(() => Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = victim.Id.ToString(), Item = Oversized(victim) }, attackerSession.Token).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, tooBig.StatusCode);
        Assert.Contains("MailboxMaxItemBytes", tooBig.Status.Detail, StringComparison.Ordinal);

        RpcException? share = null;
        var stored = 0;
        for (var i = 0; i < 200 && share is null; i++)
        {
            try
            {
                await Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = victim.Id.ToString(), Item = SealedBoxes.Seal(new byte[30 * 1024], victim.PublicKey) }, attackerSession.Token);
                stored++;
            }
            catch (RpcException ex)
            {
                share = ex;
            }
        }

        Assert.NotNull(share);
        Assert.Equal(StatusCode.ResourceExhausted, share.StatusCode);
        // Whichever bound comes first: this sender's share of the mailbox, or its hourly mailbox bytes.
        Assert.True(share.Status.Detail.Contains("one sender may hold at most", StringComparison.Ordinal) || share.Status.Detail.Contains("hourly share of mailbox bytes", StringComparison.Ordinal), share.Status.Detail);
        Assert.InRange(stored, 10, 200);

        // A friend's message still gets in, and comes first in its turn: one sender's flood does not
        // hold back the others' mail. Every page fits the message limit, and the recipient drains all.
        await Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = victim.Id.ToString(), Item = SealedBoxes.Seal("see you at noon"u8, victim.PublicKey) }, friendSession.Token);
        await using var victimSession = await LiveSession.OpenAsync(Client, victim, Heartbeat);
        var first = await Client.Mailbox.TakeMailAsync(new TakeMailRequest(), victimSession.Token);
        Assert.InRange(first.Items.Count, 2, stored);
        var received = first.Items.Where(i => i.Sender == friend.Id.ToString()).Select(i => System.Text.Encoding.UTF8.GetString(SealedBoxes.Open(i.Item, victim))).Single();
        Assert.Equal("see you at noon", received);
        var taken = 0;
        var page = first;
        for (var pages = 0; page.Items.Count > 0 && pages < 100; pages++)
        {
            Assert.True(page.CalculateSize() < 256 * 1024, $"a page of {page.CalculateSize()} bytes");
            taken += page.Items.Count;
            await Client.Mailbox.AckMailAsync(new AckMailRequest { ItemIds = { page.Items.Select(i => i.ItemId) } }, victimSession.Token);
            page = await Client.Mailbox.TakeMailAsync(new TakeMailRequest(), victimSession.Token);
        }

        Assert.Equal(stored + 1, taken);
    }

    [Fact]
    public async Task ManySmallItemsNeverMakeATakeMailReplyExceedTheMessageLimit()
    {
        using var recipient = PeerIdentity.Generate();
        await (await LiveSession.OpenAsync(Client, recipient, Heartbeat)).DisposeAsync();
        // Two senders fill the mailbox to 500 items of ~500 sealed bytes: the sealed bytes alone fit a
        // reply, but with each item's id, sender and time around them 500 of them would not.
        var stored = 0;
        foreach (var sender in new[] { PeerIdentity.Generate(), PeerIdentity.Generate() })
        {
            using (sender)
            {
                await using var session = await LiveSession.OpenAsync(Client, sender, Heartbeat);
                for (var i = 0; i < 250; i++)
                {
                    await Eventually.ReturnsAsync(
                        async () => await Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = recipient.Id.ToString(), Item = SealedBoxes.Seal(new byte[370], recipient.PublicKey) }, session.Token),
                        _ => true,
                        Patience,
                        "a deposit within the sender's request rate");
                    stored++;
                }
            }
        }

        await using var recipientSession = await LiveSession.OpenAsync(Client, recipient, Heartbeat);
        var taken = 0;
        for (var pages = 0; taken < stored && pages < 20; pages++)
        {
            var page = await Client.Mailbox.TakeMailAsync(new TakeMailRequest { Limit = 500 }, recipientSession.Token);
            Assert.NotEmpty(page.Items);
            Assert.True(page.CalculateSize() < 256 * 1024, $"a page of {page.CalculateSize()} bytes");
            taken += page.Items.Count;
            await Client.Mailbox.AckMailAsync(new AckMailRequest { ItemIds = { page.Items.Select(i => i.ItemId) } }, recipientSession.Token);
        }

        Assert.Equal(stored, taken);
    }

    /// <summary>A paired link's first frame: the relay port's offer, or frames over the call.</summary>
    private static readonly RelayFrame.KindOneofCase[] LinkOpened = [RelayFrame.KindOneofCase.Socket, RelayFrame.KindOneofCase.Accept];

    [Fact]
    public async Task OneDialerCannotTakeAllOfATargetsRelayPlaces()
    {
        using var target = PeerIdentity.Generate();
        using var attacker = PeerIdentity.Generate();
        using var honestDialer = PeerIdentity.Generate();
        await using var targetSession = await LiveSession.OpenAsync(Client, target, Heartbeat);
        await using var attackerSession = await LiveSession.OpenAsync(Client, attacker, Heartbeat);
        await using var honestSession = await LiveSession.OpenAsync(Client, honestDialer, Heartbeat);
        var answers = new List<AsyncDuplexStreamingCall<RelayFrame, RelayFrame>>();
        using var stop = new CancellationTokenSource();
        // The target answers every offer and keeps each link open, as a daemon would.
        var answering = Task.Run(async () =>
        {
            await foreach (var e in targetSession.Events.Reader.ReadAllAsync(stop.Token))
            {
                if (e.KindCase == SupernodeEvent.KindOneofCase.RelayOffer)
                {
                    var call = Client.Relay.Relay(targetSession.Token);
                    await call.RequestStream.WriteAsync(new RelayFrame { Accept = e.RelayOffer.LinkId });
                    answers.Add(call);
                }
            }
        });

        var held = new List<AsyncDuplexStreamingCall<RelayFrame, RelayFrame>>();
        try
        {
            RpcException? refusal = null;
            for (var i = 0; i < 10 && refusal is null; i++)
            {
                var call = Client.Relay.Relay(attackerSession.Token);
                held.Add(call);
                await call.RequestStream.WriteAsync(new RelayFrame { Open = RelayRequest(attacker, target.Id) });
                try
                {
                    Assert.True(await call.ResponseStream.MoveNext());
                    Assert.Contains(call.ResponseStream.Current.KindCase, LinkOpened);
                }
                catch (RpcException ex)
                {
                    refusal = ex;
                }
            }

            Assert.NotNull(refusal);
            Assert.Equal(StatusCode.ResourceExhausted, refusal.StatusCode);
            Assert.Contains($"relayed links to {target.Id}", refusal.Status.Detail, StringComparison.Ordinal);
            Assert.Equal(3, held.Count);

            // Another dialer still reaches the target while the attacker holds its links.
            var honest = Client.Relay.Relay(honestSession.Token);
            held.Add(honest);
            await honest.RequestStream.WriteAsync(new RelayFrame { Open = RelayRequest(honestDialer, target.Id) });
            Assert.True(await honest.ResponseStream.MoveNext());
            Assert.Contains(honest.ResponseStream.Current.KindCase, LinkOpened);
            await targetSession.AssertAliveForAsync(2, Patience);
        }
        finally
        {
            await stop.CancelAsync();
            await answering.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
            foreach (var call in held.Concat(answers))
            {
                call.Dispose();
            }
        }
    }

    [Fact]
    public async Task NoSetOfPublishedListingsMakesASearchPageExceedTheMessageLimit()
    {
        var word = "zq" + Guid.NewGuid().ToString("N")[..10];
        // Listings as large as the rules allow, in three-byte characters: each record is ~50 KB on the wire.
        var description = string.Concat(Enumerable.Repeat("€", 7900));
        var sellers = Enumerable.Range(0, 8).Select(_ => PeerIdentity.Generate()).ToList();
        try
        {
            foreach (var seller in sellers)
            {
                await Client.Listings.PublishListingAsync(ListingFactory.Sign(seller, ListingFactory.Listing($"Heavy {word}", description)));
            }

            var seen = new HashSet<string>();
            var token = string.Empty;
            var pages = 0;
            do
            {
                var page = await Client.Listings.SearchAsync(new SearchRequest { Text = word, Limit = 100, PageToken = token });
                Assert.NotEmpty(page.Hits);
                Assert.True(page.CalculateSize() < 256 * 1024, $"a page of {page.CalculateSize()} bytes");
                seen.UnionWith(page.Hits.Select(h => h.Record.Listing.ListingId));
                token = page.NextPageToken;
                pages++;
            }
            while (token.Length > 0 && pages < 20);

            Assert.Equal(8, seen.Count);
            Assert.True(pages > 1, "all eight fitted one page: the test did not exercise paging by bytes");
        }
        finally
        {
            sellers.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task NothingAClientReceivesNamesAnInternalAddress()
    {
        using var session = await RawSession.OpenAsync(Client);
        var supernodes = await Client.Directory.ListSupernodesAsync(new ListSupernodesRequest());

        Assert.StartsWith("sn-", session.Challenge.SupernodeId, StringComparison.Ordinal);
        Assert.DoesNotContain("@", session.Challenge.SupernodeId, StringComparison.Ordinal);
        var info = Assert.Single(supernodes.Supernodes);
        Assert.Equal(fixture.Node.GrpcUrl, info.Url);
        // Nothing beside the public URL and start time: no field this client does not know, no silo address.
        Assert.Equal(new SupernodeInfo { Url = info.Url, StartedMs = info.StartedMs }.CalculateSize(), info.CalculateSize());
    }

    private static SignedEnvelope RelayRequest(PeerIdentity dialer, PeerId target)
    {
        var now = DateTimeOffset.UtcNow;
        return SignedEnvelopes.Sign(dialer, EnvelopeKinds.RelayRequest, (ulong)now.ToUnixTimeMilliseconds(), new RelayRequest { Target = target.ToString() }, now, now.AddMinutes(1));
    }

    // Sealing refuses to make an item this large; a hostile client builds one by hand.
    private static SealedItem Oversized(PeerIdentity recipient)
    {
        var sealedItem = SealedBoxes.Seal("x"u8, recipient.PublicKey);
        sealedItem.Ciphertext = ByteString.CopyFrom(new byte[40 * 1024]);
        return sealedItem;
    }

    private static byte[] Field(int number, byte[] data)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        output.WriteTag(number, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(data));
        output.Flush();
        return buffer.ToArray();
    }
}
