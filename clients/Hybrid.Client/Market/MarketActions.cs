using Google.Protobuf;
using Hybrid.Client.Store;
using Hybrid.Protocol.Content;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Market;

/// <summary>
/// What the CLI and the desktop app both do on a user's behalf without the daemon: register goods
/// data this peer will serve, sign listings, and sign reviews of completed orders from the local store.
/// </summary>
public static class MarketActions
{
    /// <summary>The local store of a home directory.</summary>
    public static LocalStore OpenStore(string homePath) => new(Path.Combine(homePath, "store.db"));

    /// <summary>Builds the manifest of <paramref name="filePath"/> and records it as served by this peer; returns its content id.</summary>
    public static async Task<string> RegisterGoodsAsync(string homePath, string filePath, bool free, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(filePath);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"{full} does not exist", full);
        }

        ContentManifest manifest;
        await using (var stream = File.OpenRead(full))
        {
            manifest = await ContentManifests.BuildAsync(stream, cancellationToken: cancellationToken);
        }

        var contentId = ContentManifests.ContentId(manifest);
        using var store = OpenStore(homePath);
        store.RegisterContent(new ContentRow(contentId, full, manifest.ToByteArray(), free));
        return contentId;
    }

    /// <summary>
    /// Re-encodes a photo (no metadata left), keeps the full image in the home's photos folder and
    /// registers it as content served to anyone; returns the listing's record of it.
    /// </summary>
    /// <exception cref="PhotoRejectedException">Not an image, or over a limit.</exception>
    public static async Task<ListingPhoto> RegisterPhotoAsync(string homePath, string photoPath, CancellationToken cancellationToken)
    {
        var prepared = Photos.Prepare(photoPath);
        var folder = Directory.CreateDirectory(Path.Combine(homePath, "photos")).FullName;
        var name = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(prepared.Image));
        var stored = Path.Combine(folder, name + ".jpg");
        if (!File.Exists(stored))
        {
            var partial = stored + ".partial";
            await File.WriteAllBytesAsync(partial, prepared.Image, cancellationToken);
            File.Move(partial, stored, overwrite: true);
        }

        var contentId = await RegisterGoodsAsync(homePath, stored, free: true, cancellationToken);
        return Photos.ToListingPhoto(prepared, contentId);
    }

    /// <summary>Whether a price means "free" (goods data then served to anyone).</summary>
    public static bool IsFree(Money price) => price is { Units: 0, Nanos: 0 };

    /// <summary>Checks and signs a listing that expires in <paramref name="days"/> days.</summary>
    /// <exception cref="ArgumentException">The listing breaks a rule; the message says which.</exception>
    public static SignedEnvelope SignListing(PeerIdentity identity, Listing listing, int days, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var expires = now.AddDays(days);
        if (ListingRules.Check(listing, expires, now) is { } problem)
        {
            throw new ArgumentException(problem, nameof(listing));
        }

        return SignedEnvelopes.Sign(identity, EnvelopeKinds.Listing, (ulong)now.ToUnixTimeMilliseconds(), listing, now, expires);
    }

    /// <summary>Signs a withdrawal of one of this peer's listings.</summary>
    public static SignedEnvelope SignWithdrawal(PeerIdentity identity, string listingId, DateTimeOffset now) =>
        ListingRules.IsListingId(listingId, out var error)
            ? SignedEnvelopes.Sign(identity, EnvelopeKinds.Withdrawal, (ulong)now.ToUnixTimeMilliseconds(), new ListingWithdrawal { ListingId = listingId }, now, now.AddDays(1))
            : throw new ArgumentException(error, nameof(listingId));

    /// <summary>Signs this peer's review of the other party of a completed order in the local store.</summary>
    /// <exception cref="KeyNotFoundException">No such order here.</exception>
    /// <exception cref="InvalidOperationException">The order is not finished (completed, completed by its deadline, or decided by its mediator).</exception>
    public static (SignedEnvelope Review, string Reviewed) SignReview(PeerIdentity identity, string homePath, string orderId, uint stars, string text, IReadOnlyDictionary<string, uint>? aspects, DateTimeOffset now, bool? verdictAccepted = null)
    {
        using var store = OpenStore(homePath);
        var order = store.GetOrder(orderId) ?? throw new KeyNotFoundException($"no order {orderId}: see your orders");
        if (order.Role == "mediator")
        {
            throw new InvalidOperationException($"you mediated order {orderId}; only its buyer and seller review each other");
        }

        var receipt = Orders.OrderService.ChainOf(order);
        VerifiedReceipt verified;
        try
        {
            verified = Receipts.Verify(receipt, now);
        }
        catch (EnvelopeRejectedException ex)
        {
            throw new InvalidOperationException($"order {orderId} cannot be reviewed yet: {ex.Message}", ex);
        }

        if (verdictAccepted is not null && verified.State != OrderState.Decided)
        {
            throw new InvalidOperationException($"order {orderId} was not decided by a mediator: there is no verdict to accept or reject");
        }

        var body = new Review
        {
            Receipt = receipt,
            Reviewed = order.Counterparty,
            Stars = stars,
            Text = text,
        };
        foreach (var (name, score) in aspects ?? new Dictionary<string, uint>())
        {
            body.Aspects[name] = score;
        }

        if (verdictAccepted is { } accepts)
        {
            body.VerdictAccepted = accepts;
        }

        return (Reviews.Sign(identity, body, (ulong)now.ToUnixTimeMilliseconds(), now), order.Counterparty);
    }
}
