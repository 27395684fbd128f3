using Hybrid.Desktop.Services;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.V1;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>One listing, its seller's reputation and reviews; order it or chat with the seller.</summary>
public sealed class ListingModel(DesktopSession session) : DesktopPage(session)
{
    [BindProperty(SupportsGet = true)] public string Id { get; set; } = string.Empty;

    public ListingRecord? Record { get; private set; }

    public Reputation? Reputation { get; private set; }

    public ReviewPage? Reviews { get; private set; }

    /// <summary>The listing's mediators' records, by PeerId.</summary>
    public Dictionary<string, MediatorRecord> MediatorRecords { get; } = new(StringComparer.Ordinal);

    public bool Mine => Record?.Seller == Session.Identity.Id.ToString();

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(async () =>
    {
        Record = await Session.Supernodes.GetListingAsync(Id, cancellationToken);
        Reputation = await Session.Supernodes.CallAsync((c, o) => c.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = Record.Seller }, o).ResponseAsync, cancellationToken);
        Reviews = await Session.Supernodes.ListReviewsAsync(Hybrid.Protocol.Identity.PeerId.Parse(Record.Seller), 20, cancellationToken: cancellationToken);
        foreach (var mediator in Record.Listing.Mediators.Distinct(StringComparer.Ordinal))
        {
            var standing = await Session.Supernodes.CallAsync((c, o) => c.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = mediator }, o).ResponseAsync, cancellationToken);
            MediatorRecords[mediator] = standing.Mediator ?? new MediatorRecord();
        }
    });

    public Task<IActionResult> OnPostOrderAsync(CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            var order = await Session.Control.CreateOrderAsync(new CreateOrderRequest { ListingId = Id, Quantity = 1 }, cancellationToken: cancellationToken);
            Notice($"Order {order.OrderId} sent to the seller ({order.Delivery}). It shows as accepted once they accept it.");
            return RedirectToPage("/Orders");
        },
        () => RedirectToPage("/Listing", new { id = Id }));
}
