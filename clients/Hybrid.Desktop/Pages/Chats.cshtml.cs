using Grpc.Core;
using Hybrid.Desktop.Services;
using Hybrid.Protocol.Control;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>Conversations, one conversation, and sending (directly, relayed, or to the peer's mailbox).</summary>
public sealed class ChatsModel(DesktopSession session) : DesktopPage(session)
{
    [BindProperty(SupportsGet = true)] public string? Peer { get; set; }

    public IReadOnlyList<ChatEntry> Messages { get; private set; } = [];

    /// <summary>Messages of the open conversation shown on load; later ones arrive as events.</summary>
    public const int Shown = 200;

    public IReadOnlyList<Conversation> Conversations { get; private set; } = [];

    /// <summary>The cursor of the last message shown: events start after it.</summary>
    public long Cursor { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(async () =>
    {
        if (string.IsNullOrEmpty(Peer))
        {
            Conversations = [.. (await Session.Control.ListConversationsAsync(new ListConversationsRequest(), cancellationToken: cancellationToken)).Conversations];
            return;
        }

        using var call = Session.Control.ReadChat(new ReadChatRequest { PeerId = Peer, Limit = Shown, Newest = true }, cancellationToken: cancellationToken);
        var entries = new List<ChatEntry>();
        await foreach (var entry in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            entries.Add(entry);
        }

        Messages = entries;
        Cursor = entries.Count > 0 ? entries[^1].Cursor : 0;
    });

    public Task<IActionResult> OnPostSendAsync(string text, CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            var sent = await Session.Control.SendChatAsync(new SendChatRequest { PeerId = Peer ?? string.Empty, Text = text ?? string.Empty }, cancellationToken: cancellationToken);
            if (sent.Status == "stored")
            {
                Notice("They are offline: the message waits sealed in their mailbox and is delivered when they come back.");
            }

            return RedirectToPage("/Chats", new { peer = Peer });
        },
        () => RedirectToPage("/Chats", new { peer = Peer }));
}
