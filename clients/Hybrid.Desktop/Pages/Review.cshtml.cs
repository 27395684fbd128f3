using Hybrid.Client.Market;
using Hybrid.Desktop.Services;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>Review the other party of a completed order.</summary>
public sealed class ReviewModel(DesktopSession session) : DesktopPage(session)
{
    [BindProperty(SupportsGet = true)] public string OrderId { get; set; } = string.Empty;

    /// <summary>Whether the order was decided by its mediator (the review may then accept or reject the verdict).</summary>
    public bool Decided { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        await LoadAsync(async () => Decided = (await Session.Control.GetOrderAsync(new Hybrid.Protocol.Control.OrderRef { OrderId = OrderId }, cancellationToken: cancellationToken)).State == "decided");
        return Page();
    }

    public Task<IActionResult> OnPostAsync(uint stars, string? text, string? verdict, CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            var accepts = verdict switch { "accept" => true, "reject" => false, _ => (bool?)null };
            var (envelope, reviewed) = MarketActions.SignReview(Session.Identity, Session.HomePath, OrderId, stars, text ?? string.Empty, null, DateTimeOffset.UtcNow, accepts);
            await Session.Supernodes.CallAsync((c, o) => c.Reputation.SubmitReviewAsync(envelope, o).ResponseAsync, cancellationToken);
            Notice($"Review published for {Abbreviate(reviewed)}.");
            return RedirectToPage("/Orders");
        },
        () => RedirectToPage("/Review", new { orderId = OrderId }));
}
