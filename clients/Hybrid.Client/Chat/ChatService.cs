using Hybrid.Client.Connectivity;
using Hybrid.Client.Mailbox;
using Hybrid.Client.Store;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Chat;

/// <summary>
/// Chats between this peer and others: each message is signed, carried by the <see cref="Courier"/>
/// and stored on the other side once verified, within that side's budget for the sender.
/// </summary>
public sealed partial class ChatService(PeerIdentity identity, LocalStore store, Courier courier, PeerBudgets budgets, TimeProvider time, ILogger<ChatService> logger)
{
    /// <summary>Longest chat message, in characters.</summary>
    public const int MaxChatLength = 4000;

    private static readonly TimeSpan ChatLifetime = TimeSpan.FromDays(30);

    /// <summary>Sends a chat message; returns it as stored, with how it travelled.</summary>
    public async Task<ChatRow> SendAsync(PeerId to, string text, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Length > MaxChatLength)
        {
            throw Refuse.Invalid($"a chat message has 1-{MaxChatLength} characters");
        }

        if (to.Equals(identity.Id))
        {
            throw Refuse.Invalid("that is your own PeerId");
        }

        var now = time.GetUtcNow();
        var sequence = store.NextSequence(to);
        var message = new ChatMessage { To = to.ToString(), Sequence = sequence, Text = text, SentMs = now.ToUnixTimeMilliseconds() };
        var envelope = SignedEnvelopes.Sign(identity, EnvelopeKinds.Chat, sequence, message, now, now + ChatLifetime);
        var rowId = store.AddOutgoingChat(to, sequence, text, message.SentMs, "sending");
        budgets.AddContact(to);
        var how = await courier.DeliverAsync(to, new PeerMessage { Chat = envelope }, "chat", $"{to}:{sequence}", cancellationToken);
        store.SetChatStatus(to, sequence, how);
        return new ChatRow(rowId, to.ToString(), "out", sequence, text, message.SentMs, how);
    }

    /// <summary>
    /// Checks and stores a chat message; <paramref name="linkPeer"/> is the authenticated sender of a
    /// link (null from a mailbox, where the signature alone names the sender).
    /// </summary>
    public ChatAck Receive(SignedEnvelope envelope, PeerId? linkPeer)
    {
        VerifiedEnvelope verified;
        try
        {
            verified = SignedEnvelopes.Verify(envelope, EnvelopeKinds.Chat, time.GetUtcNow(), linkPeer);
        }
        catch (EnvelopeRejectedException ex)
        {
            throw ex.Fault == EnvelopeFault.WrongSigner ? Refuse.NotAllowed(ex.Message) : Refuse.Invalid(ex.Message);
        }

        var message = verified.Body(ChatMessage.Parser);
        if (message.To != identity.Id.ToString())
        {
            throw Refuse.NotAllowed("this message was signed for another peer");
        }

        if (message.Text.Length is 0 or > MaxChatLength || message.Sequence == 0)
        {
            throw Refuse.Invalid($"a chat message has a sequence and 1-{MaxChatLength} characters");
        }

        if (store.HasIncomingChat(verified.Signer, message.Sequence))
        {
            return new ChatAck { Sequence = message.Sequence };
        }

        if (budgets.StoreChat(verified.Signer, () => store.AddIncomingChat(verified.Signer, message.Sequence, message.Text, message.SentMs)))
        {
            LogChat(logger, verified.Signer, message.Sequence);
        }

        return new ChatAck { Sequence = message.Sequence };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Chat {Sequence} from {Peer}")]
    private static partial void LogChat(ILogger logger, PeerId peer, ulong sequence);
}
