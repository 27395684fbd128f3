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

    public IReadOnlyList<(string Peer, string Last)> Conversations { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(async () =>
    {
        using var call = Session.Control.ReadChat(new ReadChatRequest { PeerId = Peer ?? string.Empty }, cancellationToken: cancellationToken);
        var entries = new List<ChatEntry>();
        await foreach (var entry in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            entries.Add(entry);
        }

        Messages = entries;
        Conversations = [.. entries.GroupBy(e => e.PeerId).Select(g => (g.Key, g.Last().Text))];
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
