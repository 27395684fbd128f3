using Hybrid.Client.Market;
using Hybrid.Desktop.Services;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>The user's listings: publish (with a goods file), withdraw.</summary>
public sealed class MineModel(DesktopSession session) : DesktopPage(session)
{
    public IReadOnlyList<ListingRecord> Listings { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(async () =>
    {
        var page = await Session.Supernodes.ListBySellerAsync(new ListBySellerRequest { Seller = Session.Identity.Id.ToString(), Limit = 100 }, cancellationToken);
        Listings = [.. page.Listings];
    });

    public Task<IActionResult> OnPostPublishAsync(string title, string price, string currency, string category, string? location, string? description, IFormFile? goods, uint? quantity, string? mediators, List<IFormFile>? photos, CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            var listing = new Listing
            {
                ListingId = ListingRules.NewListingId(),
                Title = title ?? string.Empty,
                Description = description ?? string.Empty,
                Price = ListingRules.ParseMoney(price ?? string.Empty, (currency ?? string.Empty).Trim().ToUpperInvariant()),
                Category = category ?? "other",
                Quantity = quantity is > 0 ? quantity.Value : 1,
                CreatedMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                Location = ParseLocation(location),
            };
            listing.Mediators.AddRange((mediators ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            if (photos is { Count: > ListingRules.MaxPhotos })
            {
                throw new ArgumentException($"{photos.Count} photos; a listing has at most {ListingRules.MaxPhotos}.");
            }

            foreach (var photo in photos ?? [])
            {
                // Kept only while it is re-encoded: what is published is the metadata-free copy.
                var upload = Path.Combine(Path.GetTempPath(), $"hybrid-photo-{Guid.NewGuid():N}");
                try
                {
                    await using (var target = System.IO.File.Create(upload))
                    {
                        await photo.CopyToAsync(target, cancellationToken);
                    }

                    listing.Photos.Add(await MarketActions.RegisterPhotoAsync(Session.HomePath, upload, cancellationToken));
                }
                catch (PhotoRejectedException ex)
                {
                    throw new ArgumentException($"Photo {photo.FileName}: {ex.Message}.", ex);
                }
                finally
                {
                    System.IO.File.Delete(upload);
                }
            }

            if (goods is { Length: > 0 })
            {
                var folder = Path.Combine(Session.HomePath, "goods");
                Directory.CreateDirectory(folder);
                var file = Path.Combine(folder, $"{listing.ListingId}-{Path.GetFileName(goods.FileName)}");
                await using (var target = System.IO.File.Create(file))
                {
                    await goods.CopyToAsync(target, cancellationToken);
                }

                listing.ContentId = await MarketActions.RegisterGoodsAsync(Session.HomePath, file, MarketActions.IsFree(listing.Price), cancellationToken);
            }

            var envelope = MarketActions.SignListing(Session.Identity, listing, 30, DateTimeOffset.UtcNow);
            var published = await Session.Supernodes.CallAsync((c, o) => c.Listings.PublishListingAsync(envelope, o).ResponseAsync, cancellationToken);
            Notice($"Published “{listing.Title}” ({published.ListingId}).");
            return RedirectToPage("/Mine");
        },
        () => RedirectToPage("/Mine"));

    public Task<IActionResult> OnPostWithdrawAsync(string id, CancellationToken cancellationToken) => AttemptAsync(
        async () =>
        {
            var envelope = MarketActions.SignWithdrawal(Session.Identity, id, DateTimeOffset.UtcNow);
            await Session.Supernodes.CallAsync((c, o) => c.Listings.WithdrawListingAsync(envelope, o).ResponseAsync, cancellationToken);
            Notice($"Withdrawn {id}.");
            return RedirectToPage("/Mine");
        },
        () => RedirectToPage("/Mine"));

    private static Location ParseLocation(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return new Location();
        }

        var parts = text.Split('/', StringSplitOptions.TrimEntries);
        return new Location { Country = parts[0].ToUpperInvariant(), Region = parts.Length > 1 ? parts[1] : string.Empty };
    }
}
