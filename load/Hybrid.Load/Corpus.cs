using System.Collections.Concurrent;
using Google.Protobuf;
using Hybrid.Index.Listings;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>Realistic signed listings, made in parallel; the same seed gives the same listing texts.</summary>
internal sealed class Corpus
{
    private Corpus(List<(Listing Listing, SignedEnvelope Envelope, StoredListing Stored)> items) => Items = items;

    public List<(Listing Listing, SignedEnvelope Envelope, StoredListing Stored)> Items { get; }

    public static Corpus Create(int count, int sellers = 1000, int seed = 42)
    {
        var identities = Enumerable.Range(0, sellers).Select(_ => PeerIdentity.Generate()).ToArray();
        var listings = ListingFactory.Realistic(seed).Take(count).ToArray();
        var items = new (Listing, SignedEnvelope, StoredListing)[count];
        var now = DateTimeOffset.UtcNow;
        Parallel.For(0, count, i =>
        {
            var seller = identities[i % sellers];
            var envelope = ListingFactory.Sign(seller, listings[i], 1, TimeSpan.FromDays(60), now);
            var expires = now.AddDays(60).ToUnixTimeMilliseconds();
            items[i] = (listings[i], envelope, new StoredListing(listings[i].ListingId, seller.Id.ToString(), 1, expires, false, envelope.ToByteArray()));
        });
        foreach (var identity in identities)
        {
            identity.Dispose();
        }

        return new Corpus([.. items]);
    }

    /// <summary>Writes every listing straight into a supernode's store (as its shards would), in parallel batches.</summary>
    public async Task SeedAsync(IListingStore store, int shards)
    {
        var queue = new ConcurrentQueue<StoredListing>(Items.Select(i => i.Stored));
        var claims = new long[shards];
        for (var shard = 0; shard < shards; shard++)
        {
            claims[shard] = await store.ClaimAsync(shard);
        }

        await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            while (queue.TryDequeue(out var listing))
            {
                var shard = ListingShards.Of(listing.ListingId, shards);
                await store.SaveAsync(shard, listing, claims[shard]);
            }
        }));
    }

    /// <summary>Two-word queries as buyers type them (an adjective or condition, and a thing), with a price range.</summary>
    public List<SearchRequest> Queries(int count, int seed = 7, double misspelledShare = 0)
    {
        var random = new Random(seed);
        var queries = new List<SearchRequest>(count);
        for (var i = 0; i < count; i++)
        {
            var listing = Items[random.Next(Items.Count)].Listing;
            var words = listing.Title.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var thing = listing.Tags[^1];
            if (random.NextDouble() < misspelledShare && thing.Length >= 5)
            {
                // A typo as buyers make them: two neighbouring letters swapped, not the first.
                var at = random.Next(1, thing.Length - 1);
                thing = string.Concat(thing.AsSpan(0, at), thing.AsSpan(at + 1, 1), thing.AsSpan(at, 1), thing.AsSpan(at + 2));
            }

            var text = $"{words[0]} {thing}";
            var low = random.Next(0, 500);
            queries.Add(new SearchRequest
            {
                Text = text,
                Currency = listing.Price.Currency,
                MinPrice = new Money { Currency = listing.Price.Currency, Units = low },
                MaxPrice = new Money { Currency = listing.Price.Currency, Units = low + 1500 },
                Limit = 20,
            });
        }

        return queries;
    }
}
