using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Store;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Mailbox;

/// <summary>
/// Carries this peer's signed messages (chats, order steps) to another peer: over a peer link
/// (direct, else relayed) when it answers, else sealed to its key (verified against its PeerId)
/// and left in its mailbox; later asks the supernodes which mailbox items were taken.
/// </summary>
public sealed partial class Courier(LocalStore store, PeerDialer dialer, SupernodeConnection connection, ILogger<Courier> logger)
{
    /// <summary>Delivery of a chat or order step by any path: a link, else the mailbox.</summary>
    public static readonly TimeSpan DeliveryTimeout = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Delivers <paramref name="message"/> to <paramref name="to"/>; returns how: "direct", "relayed",
    /// or "stored" (in its mailbox). <paramref name="kind"/> and <paramref name="reference"/> say what
    /// to mark delivered later ("chat" with "peer:sequence", or "order" with the order id).
    /// </summary>
    public async Task<string> DeliverAsync(PeerId to, PeerMessage message, string kind, string reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
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
            throw Refuse.NotFound($"{to} is not known on this network (it has never been online): check the PeerId");
        }
        catch (PeerUnreachableException ex)
        {
            LogToMailbox(logger, to, ex.Message);
        }

        // LookupPeerAsync verifies that the key hashes to the PeerId before anything is sealed to it.
        var info = await connection.LookupPeerAsync(to, cancellationToken);
        var deposit = new DepositMailRequest { Recipient = to.ToString(), Item = SealedBoxes.Seal(message.ToByteArray(), info.PublicKey.ToByteArray()) };
        var stored = await connection.CallAsync((c, o) => c.Mailbox.DepositMailAsync(deposit, o).ResponseAsync, cancellationToken);
        store.AddMail(new MailRow(stored.ItemId, to.ToString(), kind, reference));
        return "stored";
    }

    /// <summary>Asks the supernodes which of this peer's stored messages were delivered, and records it.</summary>
    public async Task CheckDeliveriesAsync(CancellationToken cancellationToken)
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

    [LoggerMessage(Level = LogLevel.Information, Message = "{Peer} cannot be reached now ({Reason}); leaving the message in its mailbox")]
    private static partial void LogToMailbox(ILogger logger, PeerId peer, string reason);
}
