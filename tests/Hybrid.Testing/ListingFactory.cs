using Bogus;
using Google.Protobuf;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;

namespace Hybrid.Testing;

/// <summary>Signed listings for tests, demos and load: hand-made ones, and realistic ones from Bogus.</summary>
public static class ListingFactory
{
    private static readonly string[] Conditions = ["new", "like new", "used", "refurbished", "vintage", "handmade"];
    private static readonly (string Category, string[] Things)[] Catalogue =
    [
        ("sports", ["road bike", "mountain bike", "tennis racket", "yoga mat", "kayak", "ski boots", "climbing rope"]),
        ("electronics", ["laptop", "headphones", "camera lens", "smartphone", "turntable", "e-reader", "monitor"]),
        ("books", ["cookbook", "novel", "atlas", "comic collection", "poetry anthology", "field guide"]),
        ("home", ["armchair", "desk lamp", "rug", "coffee table", "bookshelf", "cast iron pan"]),
        ("music", ["acoustic guitar", "violin", "synthesizer", "drum kit", "vinyl record", "ukulele"]),
        ("clothing", ["leather jacket", "wool sweater", "rain coat", "hiking boots", "silk scarf"]),
        ("garden", ["lawn mower", "seed kit", "watering can", "greenhouse", "pruning shears"]),
        ("toys", ["model train", "puzzle", "board game", "building blocks", "kite"]),
    ];

    private static readonly (string Country, string Region, string Geohash, string Currency)[] Places =
    [
        ("DE", "Berlin", "u33db", "EUR"), ("DE", "München", "u281z", "EUR"), ("FR", "Île-de-France", "u09tv", "EUR"),
        ("ES", "Catalunya", "sp3e9", "EUR"), ("GB", "London", "gcpvj", "GBP"), ("US", "New York", "dr5ru", "USD"),
        ("US", "California", "9q8yy", "USD"), ("TR", "İstanbul", "sxk97", "TRY"), ("JP", "Tokyo", "xn76c", "JPY"),
        ("SE", "Stockholm", "u6sce", "SEK"),
    ];

    /// <summary>A listing body with sensible defaults; change what a test is about.</summary>
    public static Listing Listing(string title, string description = "", decimal price = 10m, string currency = "EUR", string category = "other", string country = "DE", string region = "Berlin", string geohash = "u33db", DateTimeOffset? created = null, params string[] tags)
    {
        var listing = new Listing
        {
            ListingId = ListingRules.NewListingId(),
            Title = title,
            Description = description,
            Price = ListingRules.ParseMoney(price.ToString(System.Globalization.CultureInfo.InvariantCulture), currency),
            Category = category,
            Location = new Location { Country = country, Region = region, Geohash = geohash },
            Quantity = 1,
            CreatedMs = (created ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds(),
        };
        listing.Tags.AddRange(tags);
        return listing;
    }

    /// <summary>Signs a listing body as its seller would.</summary>
    public static SignedEnvelope Sign(PeerIdentity seller, Listing listing, ulong version = 1, TimeSpan? lifetime = null, DateTimeOffset? now = null)
    {
        var issued = now ?? DateTimeOffset.UtcNow;
        return SignedEnvelopes.Sign(seller, EnvelopeKinds.Listing, version, listing, issued, issued + (lifetime ?? TimeSpan.FromDays(30)));
    }

    /// <summary>Signs a withdrawal as the seller would.</summary>
    public static SignedEnvelope Withdrawal(PeerIdentity seller, string listingId, ulong version)
    {
        var now = DateTimeOffset.UtcNow;
        return SignedEnvelopes.Sign(seller, EnvelopeKinds.Withdrawal, version, new ListingWithdrawal { ListingId = listingId }, now, now.AddDays(1));
    }

    /// <summary>Realistic listings: the same seed gives the same listings.</summary>
    public static IEnumerable<Listing> Realistic(int seed, DateTimeOffset? now = null)
    {
        var faker = new Faker { Random = new Randomizer(seed) };
        var clock = now ?? DateTimeOffset.UtcNow;
        while (true)
        {
            var (category, things) = faker.PickRandom(Catalogue);
            var thing = faker.PickRandom(things);
            var place = faker.PickRandom(Places);
            var condition = faker.PickRandom(Conditions);
            var brand = faker.Company.CompanyName(0).Split(' ')[0];
            var listing = new Listing
            {
                ListingId = ListingRules.NewListingId(),
                Title = $"{faker.Commerce.ProductAdjective()} {brand} {thing}, {condition}",
                Description = $"{faker.Commerce.ProductDescription()} {faker.Lorem.Sentence(8)} Pick-up in {place.Region} or shipping.",
                Price = new Money { Currency = place.Currency, Units = faker.Random.Long(1, 2000), Nanos = faker.Random.Int(0, 99) * 10_000_000 },
                Category = category,
                Location = new Location { Country = place.Country, Region = place.Region, Geohash = place.Geohash + faker.Random.String2(2, "0123456789bcdefghjkmnpqrstuvwxyz") },
                Quantity = (uint)faker.Random.Int(1, 5),
                CreatedMs = clock.AddMinutes(-faker.Random.Int(0, 60 * 24 * 30)).ToUnixTimeMilliseconds(),
            };
            listing.Tags.Add(condition);
            listing.Tags.Add(thing.Split(' ')[^1]);
            yield return listing;
        }
    }

    /// <summary>The bytes of an envelope, as stored.</summary>
    public static byte[] Bytes(SignedEnvelope envelope) => envelope.ToByteArray();
}
