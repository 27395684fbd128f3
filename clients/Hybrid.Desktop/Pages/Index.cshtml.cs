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

    [BindProperty(SupportsGet = true)] public string? Country { get; set; }

    /// <summary>A point: "52.52,13.40" or a geohash.</summary>
    [BindProperty(SupportsGet = true)] public string? Near { get; set; }

    [BindProperty(SupportsGet = true)] public double? Within { get; set; }

    /// <summary>The point searched from, once parsed.</summary>
    public GeoPoint? Point { get; private set; }

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
                Country = Country?.Trim().ToUpperInvariant() ?? string.Empty,
                MinReputation = MinReputation,
                Limit = 50,
                Facets = true,
                Sort = Sort switch
                {
                    "price" => SearchSort.PriceAscending,
                    "price-desc" => SearchSort.PriceDescending,
                    "newest" => SearchSort.Newest,
                    "distance" => SearchSort.Distance,
                    _ => SearchSort.Relevance,
                },
            };
            Point = ParsePoint(Near);
            request.Near = Point;
            request.WithinKm = Within ?? 0;
            if (Point is null && (request.WithinKm > 0 || request.Sort == SearchSort.Distance))
            {
                throw new ArgumentException("Searching by distance needs a place to measure from: latitude,longitude (e.g. 52.52,13.40) or a geohash.");
            }

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

    /// <summary>This search with some parameters changed (for facet links and "did you mean").</summary>
    public string With(string? q = null, string? category = null, string? country = null, string? currency = null, string? min = null, string? max = null)
    {
        var parameters = new Dictionary<string, string?>
        {
            ["q"] = q ?? Q,
            ["category"] = category ?? Category,
            ["country"] = country ?? Country,
            ["currency"] = currency ?? Currency,
            ["min"] = min ?? Min,
            ["max"] = max ?? Max,
            ["sort"] = Sort,
            ["minrep"] = MinReputation == 0 ? null : MinReputation.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["near"] = Near,
            ["within"] = Within?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        return Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString("/", parameters.Where(p => !string.IsNullOrEmpty(p.Value)));
    }

    /// <summary>How far a listing is from the point searched from, measured here from its own (verified) geohash.</summary>
    public string? DistanceTo(Listing listing) =>
        Point is { } from && Geo.DistanceKm(from.Latitude, from.Longitude, listing?.Location) is { } km
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{km:0.#} km")
            : null;

    /// <summary>The amount of a price bucket's bound, as the min and max fields take it.</summary>
    public static string Amount(Money money) =>
        (money.Units + (money.Nanos / 1_000_000_000m)).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);

    private static GeoPoint? ParsePoint(string? text) =>
        string.IsNullOrWhiteSpace(text) ? null
        : Geo.TryParsePoint(text, out var latitude, out var longitude) ? new GeoPoint { Latitude = latitude, Longitude = longitude }
        : throw new ArgumentException($"'{text}' is not a place: write latitude,longitude (e.g. 52.52,13.40) or a geohash (e.g. u33db).");
}
