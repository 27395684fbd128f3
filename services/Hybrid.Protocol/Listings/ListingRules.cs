using System.Collections.Frozen;
using System.Globalization;
using System.Security.Cryptography;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Listings;

/// <summary>
/// What a valid listing is. Supernodes enforce these rules where listings are accepted;
/// clients use the same rules to refuse bad input before signing it.
/// </summary>
public static class ListingRules
{
    /// <summary>Longest title, in characters.</summary>
    public const int MaxTitleLength = 140;

    /// <summary>Longest description, in characters.</summary>
    public const int MaxDescriptionLength = 8000;

    /// <summary>Most free tags on one listing.</summary>
    public const int MaxTags = 10;

    /// <summary>Longest tag, in characters.</summary>
    public const int MaxTagLength = 32;

    /// <summary>Highest price in whole units: anything above is a typo, not an offer.</summary>
    public const long MaxPriceUnits = 1_000_000_000_000;

    /// <summary>Largest quantity on offer.</summary>
    public const uint MaxQuantity = 1_000_000;

    /// <summary>Longest content id (a base32 SHA-256 with a prefix fits easily).</summary>
    public const int MaxContentIdLength = 128;

    /// <summary>Most mediators one listing names.</summary>
    public const int MaxMediators = 3;

    /// <summary>Whether <paramref name="bytes"/> start and end like a JPEG (SOI, EOI markers).</summary>
    public static bool IsJpeg(ReadOnlySpan<byte> bytes) =>
        bytes.Length > 4 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF && bytes[^2] == 0xFF && bytes[^1] == 0xD9;

    /// <summary>Most photos on one listing.</summary>
    public const int MaxPhotos = 8;

    /// <summary>Largest thumbnail carried in a listing, in bytes.</summary>
    public const int MaxThumbnailBytes = 24 * 1024;

    /// <summary>Largest width or height a photo may claim.</summary>
    public const uint MaxPhotoSide = 8192;

    /// <summary>Furthest expiry a listing may have from now.</summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(90);

    /// <summary>The published categories, in display order.</summary>
    public static readonly IReadOnlyList<string> Categories =
    [
        "art", "books", "clothing", "collectibles", "digital", "electronics", "food", "garden",
        "health", "home", "jobs", "music", "pets", "services", "sports", "toys", "vehicles", "other",
    ];

    // Active ISO 4217 codes (2024), without funds codes, precious metals and test codes.
    private static readonly FrozenSet<string> Currencies = (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD " +
        "CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD " +
        "GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT " +
        "LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR " +
        "NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP " +
        "STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG " +
        "XOF XPF YER ZAR ZMW ZWG").Split(' ').ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> CategorySet = Categories.ToFrozenSet(StringComparer.Ordinal);
    private const string Base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    private const string GeohashAlphabet = "0123456789bcdefghjkmnpqrstuvwxyz";

    /// <summary>A fresh listing id: 128 random bits as 26 base32 characters.</summary>
    public static string NewListingId()
    {
        Span<byte> bytes = stackalloc byte[17];
        RandomNumberGenerator.Fill(bytes[..16]);
        bytes[16] = 0;
        var chars = new char[26];
        int buffer = 0, bits = 0, written = 0;
        foreach (var b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5 && written < 26)
            {
                chars[written++] = Base32[(buffer >> (bits - 5)) & 31];
                bits -= 5;
            }
        }

        return new string(chars);
    }

    /// <summary>Whether <paramref name="id"/> has the form of a listing id; <paramref name="error"/> says why not.</summary>
    public static bool IsListingId(string? id, out string error)
    {
        if (string.IsNullOrEmpty(id))
        {
            error = "listing id is empty";
            return false;
        }

        if (id.Length != 26 || id.Any(c => Base32.IndexOf(c, StringComparison.Ordinal) < 0))
        {
            error = $"listing id '{Shorten(id)}' must be 26 characters of A-Z and 2-7";
            return false;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>Whether <paramref name="currency"/> is an active ISO 4217 code.</summary>
    public static bool IsCurrency(string? currency) => currency is not null && Currencies.Contains(currency);

    /// <summary>Whether <paramref name="category"/> is one of <see cref="Categories"/>.</summary>
    public static bool IsCategory(string? category) => category is not null && CategorySet.Contains(category);

    /// <summary>The amount in millionths of a unit (exact for every allowed price).</summary>
    public static long ToMicros(Money money)
    {
        ArgumentNullException.ThrowIfNull(money);
        return checked((money.Units * 1_000_000) + (money.Nanos / 1000));
    }

    /// <summary>The amount of <paramref name="micros"/> millionths of a unit.</summary>
    public static Money FromMicros(long micros, string currency) =>
        new() { Currency = currency, Units = micros / 1_000_000, Nanos = (int)(micros % 1_000_000 * 1000) };

    /// <summary>Parses "12.50" as an exact amount.</summary>
    /// <exception cref="FormatException">Not a non-negative decimal with at most 9 decimals.</exception>
    public static Money ParseMoney(string amount, string currency)
    {
        if (!decimal.TryParse(amount, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || decimal.Round(value, 9) != value)
        {
            throw new FormatException($"'{amount}' is not an amount such as 12.50");
        }

        var units = decimal.Truncate(value);
        return new Money { Currency = currency, Units = (long)units, Nanos = (int)((value - units) * 1_000_000_000m) };
    }

    /// <summary>Formats an amount as "12.50 EUR".</summary>
    public static string Format(Money money)
    {
        ArgumentNullException.ThrowIfNull(money);
        var value = money.Units + (money.Nanos / 1_000_000_000m);
        return string.Create(CultureInfo.InvariantCulture, $"{value:0.00######} {money.Currency}");
    }

    /// <summary>
    /// Every rule for a listing body signed with the given expiry. Returns the first problem in
    /// words a seller can act on, or null when the listing is valid.
    /// </summary>
    public static string? Check(Listing listing, DateTimeOffset expiresAt, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(listing);
        if (!IsListingId(listing.ListingId, out var idError))
        {
            return idError;
        }

        if (string.IsNullOrWhiteSpace(listing.Title))
        {
            return "title is empty";
        }

        if (listing.Title.Length > MaxTitleLength)
        {
            return $"title is {listing.Title.Length} characters; at most {MaxTitleLength}";
        }

        if (listing.Title.Any(char.IsControl))
        {
            return "title contains control characters";
        }

        if (listing.Description.Length > MaxDescriptionLength)
        {
            return $"description is {listing.Description.Length} characters; at most {MaxDescriptionLength}";
        }

        if (PriceProblem(listing.Price) is { } price)
        {
            return price;
        }

        if (!IsCategory(listing.Category))
        {
            return $"category '{Shorten(listing.Category)}' is not one of: {string.Join(", ", Categories)}";
        }

        if (listing.Tags.Count > MaxTags)
        {
            return $"{listing.Tags.Count} tags; at most {MaxTags}";
        }

        if (listing.Tags.FirstOrDefault(t => string.IsNullOrWhiteSpace(t) || t.Length > MaxTagLength) is { } tag)
        {
            return $"tag '{Shorten(tag)}' must be 1-{MaxTagLength} characters";
        }

        if (listing.Location is { } location && LocationProblem(location) is { } where)
        {
            return where;
        }

        // 0: sold out (the seller's daemon re-publishes the listing so when its last unit is accepted).
        if (listing.Quantity > MaxQuantity)
        {
            return $"quantity must be 0 (sold out) to {MaxQuantity} (got {listing.Quantity})";
        }

        if (listing.ContentId.Length > MaxContentIdLength)
        {
            return $"content id is {listing.ContentId.Length} characters; at most {MaxContentIdLength}";
        }

        if (listing.Mediators.Count > MaxMediators)
        {
            return $"{listing.Mediators.Count} mediators; at most {MaxMediators}";
        }

        if (listing.Mediators.FirstOrDefault(m => !Identity.PeerId.TryParse(m, out _, out _)) is { } mediator)
        {
            return $"mediator '{Shorten(mediator)}' is not a peer id";
        }

        if (listing.Photos.Count > MaxPhotos)
        {
            return $"{listing.Photos.Count} photos; at most {MaxPhotos}";
        }

        foreach (var photo in listing.Photos)
        {
            if (photo.ContentId.Length is 0 || photo.ContentId.Length > MaxContentIdLength)
            {
                return "a photo needs the content id of its full image";
            }

            // Checked by its bytes only: nobody decodes a thumbnail on the way (the buyer's side does, with limits).
            if (photo.Thumbnail.Length is 0 || photo.Thumbnail.Length > MaxThumbnailBytes || !IsJpeg(photo.Thumbnail.Span))
            {
                return $"a photo's thumbnail must be a JPEG of 1 byte to {MaxThumbnailBytes / 1024} KB";
            }

            if (photo.Width is 0 || photo.Height is 0 || photo.Width > MaxPhotoSide || photo.Height > MaxPhotoSide)
            {
                return $"a photo's width and height must be 1-{MaxPhotoSide} pixels";
            }
        }

        if (listing.CreatedMs < 0 || listing.CreatedMs > (now + Envelopes.SignedEnvelopes.AllowedClockSkew).ToUnixTimeMilliseconds())
        {
            return $"created_ms {listing.CreatedMs} is not a time in the past (Unix milliseconds)";
        }

        if (expiresAt <= now)
        {
            return $"expiry {expiresAt:O} is in the past";
        }

        if (expiresAt > now + MaxLifetime)
        {
            return $"expiry {expiresAt:O} is more than {MaxLifetime.TotalDays:0} days ahead";
        }

        return null;
    }

    /// <summary>Problems with a price, or null.</summary>
    public static string? PriceProblem(Money? price)
    {
        if (price is null)
        {
            return "price is missing";
        }

        if (!IsCurrency(price.Currency))
        {
            return $"currency '{Shorten(price.Currency)}' is not an ISO 4217 code such as EUR or USD";
        }

        if (price.Units < 0 || price.Nanos < 0)
        {
            return "price is negative";
        }

        if (price.Nanos > 999_999_999)
        {
            return "price nanos must be 0-999999999";
        }

        return price.Units > MaxPriceUnits ? $"price {price.Units} {price.Currency} is above the ceiling of {MaxPriceUnits}" : null;
    }

    private static string? LocationProblem(Location location)
    {
        if (location.Country.Length > 0 && (location.Country.Length != 2 || !location.Country.All(char.IsAsciiLetterUpper)))
        {
            return $"country '{Shorten(location.Country)}' must be an ISO 3166 code of two capital letters such as DE";
        }

        if (location.Region.Length > 64)
        {
            return "region is longer than 64 characters";
        }

        if (location.Geohash.Length > 12 || location.Geohash.Any(c => GeohashAlphabet.IndexOf(c, StringComparison.Ordinal) < 0))
        {
            return $"geohash '{Shorten(location.Geohash)}' must be up to 12 characters of 0-9 and b-z without a, i, l, o";
        }

        return null;
    }

    private static string Shorten(string text) => text.Length <= 32 ? text : text[..32] + "…";
}
