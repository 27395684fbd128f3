using Hybrid.Desktop.Services;
using Hybrid.Protocol.Control;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>Orders as buyer and seller: accept, download with progress, complete.</summary>
public sealed class OrdersModel(DesktopSession session) : DesktopPage(session)
{
    /// <summary>Orders per page.</summary>
    public const int PageSize = 100;

    [BindProperty(SupportsGet = true, Name = "older")] public string? PageToken { get; set; }

    public IReadOnlyList<OrderView> Orders { get; private set; } = [];

    /// <summary>The token of the next (older) page, or empty.</summary>
    public string NextPage { get; private set; } = string.Empty;

    public DownloadState? DownloadOf(string orderId) => Session.Downloads.TryGetValue(orderId, out var d) ? d : null;

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(async () =>
    {
        var reply = await Session.Control.ListOrdersAsync(new ListOrdersRequest { PageSize = PageSize, PageToken = PageToken ?? string.Empty }, cancellationToken: cancellationToken);
        Orders = [.. reply.Orders];
        NextPage = reply.NextPageToken;
    });

    public Task<IActionResult> OnPostAcceptAsync(string id, CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            var order = await Session.Control.AcceptOrderAsync(new OrderRef { OrderId = id }, cancellationToken: cancellationToken);
            Notice($"Accepted; the buyer was told ({order.Delivery}).");
            return RedirectToPage("/Orders");
        },
        () => RedirectToPage("/Orders"));

    public Task<IActionResult> OnPostCompleteAsync(string id, CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            await Session.Control.CompleteOrderAsync(new OrderRef { OrderId = id }, cancellationToken: cancellationToken);
            Notice("Completed: you both hold a receipt signed by both. You can review the seller now.");
            return RedirectToPage("/Orders");
        },
        () => RedirectToPage("/Orders"));

    public IActionResult OnPostDownload(string id)
    {
        Session.StartDownload(id);
        return RedirectToPage("/Orders");
    }
}
