using System.Text.Json;
using Google.Protobuf;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A daemon's mail loop takes whatever a hostile sender left in its mailbox: items that cannot be
/// opened, parsed or verified are acknowledged and reported, and the honest mail behind them arrives.
/// </summary>
public sealed class MailLoopTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task UnreadableItemsOfEveryKindAreRefusedAndReportedAndHonestMailStillArrives()
    {
        var user = new CliRunner(_temp.Sub("recipient"));
        Assert.Equal(0, (await user.RunAsync("init", "--name", "Rita")).ExitCode);
        var recipientId = PeerId.Parse((await user.RunAsync("id")).Stdout.Trim());
        using var hostile = PeerIdentity.Generate();
        using var friend = PeerIdentity.Generate();
        using var other = PeerIdentity.Generate();

        // The recipient has been online once (so the network knows it), then goes offline.
        var recipientKey = await RegisterAsync(user);

        await using var hostileSession = await LiveSession.OpenAsync(fixture.Node.Client, hostile, TimeSpan.FromMilliseconds(500));
        await using var friendSession = await LiveSession.OpenAsync(fixture.Node.Client, friend, TimeSpan.FromMilliseconds(500));
        var now = DateTimeOffset.UtcNow;
        PeerMessage Chat(PeerIdentity from, string text, ulong sequence, string? to = null) => new()
        {
            Chat = SignedEnvelopes.Sign(from, EnvelopeKinds.Chat, sequence, new ChatMessage { To = to ?? recipientId.ToString(), Sequence = sequence, Text = text, SentMs = now.ToUnixTimeMilliseconds() }, now, now.AddDays(1)),
        };
        var forged = Chat(hostile, "forged", 1);
        forged.Chat.Signature = ByteString.CopyFrom(new byte[64]);
        var badOffer = new PeerMessage { Order = new OrderStep { Offer = SignedEnvelopes.Sign(hostile, EnvelopeKinds.OrderOffer, 1, new OrderOffer { OrderId = "not an order" }, now, now.AddDays(1)) } };
        badOffer.Order.Offer.Signature = ByteString.CopyFrom(new byte[64]);
        SealedItem[] hostileItems =
        [
            SealedBoxes.Seal("sealed to someone else"u8, other.PublicKey),
            SealedBoxes.Seal([0x0F, 0x01, 0x02], recipientKey),
            SealedBoxes.Seal(forged.ToByteArray(), recipientKey),
            SealedBoxes.Seal(Chat(hostile, "for another peer", 2, other.Id.ToString()).ToByteArray(), recipientKey),
            SealedBoxes.Seal(Chat(hostile, string.Empty, 3).ToByteArray(), recipientKey),
            SealedBoxes.Seal(badOffer.ToByteArray(), recipientKey),
            // Well signed, but with an expiry no clock can show.
            SealedBoxes.Seal(new PeerMessage { Chat = SignedAt(hostile, new ChatMessage { To = recipientId.ToString(), Sequence = 4, Text = "never", SentMs = now.ToUnixTimeMilliseconds() }, now.ToUnixTimeMilliseconds(), long.MinValue) }.ToByteArray(), recipientKey),
            // Opens and parses, but its envelope is empty.
            SealedBoxes.Seal(new PeerMessage { Chat = new SignedEnvelope() }.ToByteArray(), recipientKey),
        ];
        var deposited = new List<string>();
        foreach (var item in hostileItems)
        {
            deposited.Add((await fixture.Node.Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = recipientId.ToString(), Item = item }, hostileSession.Token)).ItemId);
        }

        await fixture.Node.Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = recipientId.ToString(), Item = SealedBoxes.Seal(Chat(friend, "see you at noon", 1).ToByteArray(), recipientKey) }, friendSession.Token);

        // The recipient comes back: the honest message arrives and each hostile item is reported, none kept.
        await using var daemon = await DaemonProcess.StartAsync(user, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var chats = await Eventually.ReturnsAsync(
            async () => JsonDocument.Parse((await user.RunAsync("chat", "read", "--json")).Stdout).RootElement.Clone(),
            read => read.EnumerateArray().Any(c => c.GetProperty("text").GetString() == "see you at noon"),
            TimeSpan.FromSeconds(30),
            "the honest message behind the hostile items to arrive");
        Assert.DoesNotContain(chats.EnumerateArray(), c => c.GetProperty("peerId").GetString() == hostile.Id.ToString());

        var status = await Eventually.ReturnsAsync(
            async () => JsonDocument.Parse((await user.RunAsync("status", "--json")).Stdout).RootElement.Clone(),
            s => s.GetProperty("mailRefused").GetInt32() >= hostileItems.Length,
            TimeSpan.FromSeconds(30),
            "every hostile item to be reported as refused");
        Assert.Equal(hostileItems.Length, status.GetProperty("mailRefused").GetInt32());
        var reasons = status.GetProperty("refused").EnumerateArray().Select(r => r.GetProperty("reason").GetString()!).ToList();
        Assert.Contains(reasons, r => r.Contains("signed for another peer", StringComparison.Ordinal) || r.Contains("signature", StringComparison.Ordinal));
        Assert.All(status.GetProperty("refused").EnumerateArray(), r => Assert.Equal(hostile.Id.ToString(), r.GetProperty("sender").GetString()));
        // Acknowledged, not kept: the supernode tells the hostile sender every item was taken.
        var delivery = await fixture.Node.Client.Mailbox.MailStatusAsync(new MailStatusRequest { Recipient = recipientId.ToString(), ItemIds = { deposited } }, hostileSession.Token);
        Assert.Equal(deposited.Order(StringComparer.Ordinal), delivery.Delivered.Order(StringComparer.Ordinal));
    }

    /// <summary>A chat envelope with any times at all, signed as a hostile peer would.</summary>
    private static SignedEnvelope SignedAt(PeerIdentity signer, ChatMessage body, long issuedMs, long expiresMs)
    {
        var payload = new EnvelopePayload { Kind = EnvelopeKinds.Chat, Version = body.Sequence, IssuedAtMs = issuedMs, ExpiresAtMs = expiresMs, Body = body.ToByteString() }.ToByteArray();
        return new SignedEnvelope { Payload = ByteString.CopyFrom(payload), SignerPublicKey = ByteString.CopyFrom(signer.PublicKey), Signature = ByteString.CopyFrom(signer.Sign(payload)) };
    }

    /// <summary>Runs the user's daemon once so the network knows it; returns its public key.</summary>
    private async Task<byte[]> RegisterAsync(CliRunner user)
    {
        await using (var first = await DaemonProcess.StartAsync(user, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0"))
        {
        }

        var id = (await user.RunAsync("id")).Stdout.Trim();
        var info = await fixture.Node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = id });
        return info.PublicKey.ToByteArray();
    }
}
