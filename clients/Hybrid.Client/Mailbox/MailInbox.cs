using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Chat;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Orders;
using Hybrid.Client.Store;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Mailbox;

/// <summary>
/// This peer's mailbox at the supernodes: items are taken, opened with this peer's key, verified and
/// handed to chats or orders, then acknowledged. An item that cannot be opened, parsed or verified,
/// or that the rules refuse, is acknowledged too and recorded as refused with its reason: one bad
/// item never stops the honest mail behind it.
/// </summary>
public sealed partial class MailInbox(PeerIdentity identity, LocalStore store, SupernodeConnection connection, ChatService chats, OrderService orders, TimeProvider time, ILogger<MailInbox> logger)
{
    /// <summary>Items taken per request.</summary>
    public const int TakeLimit = 100;

    /// <summary>Opens, verifies and applies the items waiting in this peer's mailbox, then acknowledges them; returns how many were taken.</summary>
    public async Task<int> TakeAsync(CancellationToken cancellationToken)
    {
        var taken = await connection.CallAsync((c, o) => c.Mailbox.TakeMailAsync(new TakeMailRequest { Limit = TakeLimit }, o).ResponseAsync, cancellationToken);
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
                        chats.Receive(message.Chat, null);
                        break;
                    case PeerMessage.KindOneofCase.Order:
                        await orders.ReceiveOrderStepAsync(message.Order, null, cancellationToken);
                        break;
                    default:
                        throw Refuse.Invalid("it opened, but holds neither a chat nor an order step");
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
        RefusedException refused => refused.Message,
        RpcException rpc => rpc.Status.Detail,
        _ => $"it could not be handled ({ex.GetType().Name}: {ex.Message})",
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropped mailbox item {ItemId} from {Sender}: {Reason}")]
    private static partial void LogBadMail(ILogger logger, string itemId, string sender, string reason);
}
