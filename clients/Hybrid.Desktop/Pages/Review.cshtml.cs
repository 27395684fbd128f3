using Hybrid.Client.Market;
using Hybrid.Desktop.Services;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>Review the other party of a completed order.</summary>
public sealed class ReviewModel(DesktopSession session) : DesktopPage(session)
{
    [BindProperty(SupportsGet = true)] public string OrderId { get; set; } = string.Empty;

    public IActionResult OnGet() => Page();

    public Task<IActionResult> OnPostAsync(uint stars, string? text, CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            var (envelope, reviewed) = MarketActions.SignReview(Session.Identity, Session.HomePath, OrderId, stars, text ?? string.Empty, null, DateTimeOffset.UtcNow);
            await Session.Supernodes.CallAsync((c, o) => c.Reputation.SubmitReviewAsync(envelope, o).ResponseAsync, cancellationToken);
            Notice($"Review published for {Abbreviate(reviewed)}.");
            return RedirectToPage("/Orders");
        },
        () => RedirectToPage("/Review", new { orderId = OrderId }));
}
