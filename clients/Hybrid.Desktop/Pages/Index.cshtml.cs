using Hybrid.Desktop.Services;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>Search with filters and sorts.</summary>
public sealed class IndexModel(DesktopSession session) : DesktopPage(session)
{
    [BindProperty(SupportsGet = true)] public string? Q { get; set; }

    [BindProperty(SupportsGet = true)] public string? Category { get; set; }

    [BindProperty(SupportsGet = true)] public string? Currency { get; set; }

    [BindProperty(SupportsGet = true)] public string? Min { get; set; }

    [BindProperty(SupportsGet = true)] public string? Max { get; set; }

    [BindProperty(SupportsGet = true)] public string Sort { get; set; } = "relevance";

    [BindProperty(SupportsGet = true, Name = "minrep")] public int MinReputation { get; set; }

    public SearchResponse? Results { get; private set; }

    /// <summary>The newest listings, shown when nothing is searched yet.</summary>
    public IReadOnlyList<ListingRecord> Newest { get; private set; } = [];

    /// <summary>A thumbnail as a data URI, if it is a small JPEG that decodes within the limits (else null: not shown).</summary>
    public static string? Thumbnail(Listing listing) =>
        listing?.Photos.Count > 0 && Hybrid.Client.Market.Photos.IsShowableThumbnail(listing.Photos[0].Thumbnail)
            ? "data:image/jpeg;base64," + listing.Photos[0].Thumbnail.ToBase64()
            : null;

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        if (Q is null && Category is null)
        {
            await LoadAsync(async () =>
                Newest = [.. (await Session.Supernodes.SearchAsync(new SearchRequest { Sort = SearchSort.Newest, Limit = 24 }, cancellationToken)).Hits.Select(h => h.Record)]);
            return;
        }

        await LoadAsync(async () =>
        {
            var request = new SearchRequest
            {
                Text = Q ?? string.Empty,
                Category = Category ?? string.Empty,
                Currency = Currency?.Trim().ToUpperInvariant() ?? string.Empty,
                MinReputation = MinReputation,
                Limit = 50,
                Sort = Sort switch
                {
                    "price" => SearchSort.PriceAscending,
                    "price-desc" => SearchSort.PriceDescending,
                    "newest" => SearchSort.Newest,
                    _ => SearchSort.Relevance,
                },
            };
            if (!string.IsNullOrWhiteSpace(Min) || !string.IsNullOrWhiteSpace(Max))
            {
                if (string.IsNullOrEmpty(request.Currency))
                {
                    throw new ArgumentException("A price range needs a currency, e.g. EUR.");
                }

                if (!string.IsNullOrWhiteSpace(Min))
                {
                    request.MinPrice = ListingRules.ParseMoney(Min, request.Currency);
                }

                if (!string.IsNullOrWhiteSpace(Max))
                {
                    request.MaxPrice = ListingRules.ParseMoney(Max, request.Currency);
                }
            }

            Results = await Session.Supernodes.SearchAsync(request, cancellationToken);
        });
    }
}
