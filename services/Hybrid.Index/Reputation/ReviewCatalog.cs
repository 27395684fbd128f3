using System.Buffers.Binary;
using Hybrid.Index.Federation;
using Hybrid.Index.Storage;
using Orleans.Concurrency;

namespace Hybrid.Index.Reputation;

/// <summary>
/// Every review a cluster holds, with the versions of the review and of its reply: one durable item
/// per review, written once the review (or reply) is stored. Federation reconciles over it.
/// </summary>
public static class ReviewCatalog
{
    /// <summary>The item set that holds the catalog.</summary>
    public const string ItemSet = "review-versions";

    /// <summary>What follows a review id in the item that stands for its reply.</summary>
    public const string ReplySuffix = "/reply";

    /// <summary>The item id of a review's reply.</summary>
    public static string ReplyId(string reviewId) => reviewId + ReplySuffix;

    /// <summary>The review id an item id stands for (the review's own item, or its reply's).</summary>
    public static string ReviewIdOf(string itemId)
    {
        ArgumentNullException.ThrowIfNull(itemId);
        return itemId.EndsWith(ReplySuffix, StringComparison.Ordinal) ? itemId[..^ReplySuffix.Length] : itemId;
    }

    /// <summary>
    /// Records the versions held of one review (idempotent), then counts the change with the
    /// cluster's <see cref="IReviewCatalogGrain"/>, so a snapshot of the catalog is read again only
    /// when it may differ.
    /// </summary>
    public static async Task PutAsync(IItemStore items, IGrainFactory grains, string reviewId, ulong version, ulong replyVersion)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(grains);
        var value = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(value, version);
        BinaryPrimitives.WriteUInt64BigEndian(value.AsSpan(8), replyVersion);
        await items.PutAsync(ItemSet, reviewId, value);
        await grains.GetGrain<IReviewCatalogGrain>(0).Changed();
    }

    /// <summary>Every item held: each review at its version, and each reply at its version.</summary>
    public static async Task<List<VersionedId>> ReadAsync(IItemStore items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        var held = new List<VersionedId>();
        await foreach (var (reviewId, value) in items.ReadAllAsync(ItemSet, cancellationToken))
        {
            if (value.Length != 16)
            {
                continue;
            }

            held.Add(new VersionedId(reviewId, BinaryPrimitives.ReadUInt64BigEndian(value)));
            if (BinaryPrimitives.ReadUInt64BigEndian(value.AsSpan(8)) is var reply and > 0)
            {
                held.Add(new VersionedId(ReplyId(reviewId), reply));
            }
        }

        return held;
    }
}

/// <summary>
/// Counts the changes to the <see cref="ReviewCatalog"/> in the cluster (one activation, key 0):
/// equal generations mean the catalog was not written in between, so a snapshot of it still holds.
/// A change is counted after its item is stored, and a reader takes the generation before it reads
/// the catalog; a new activation (its silo gone) answers with a new generation.
/// </summary>
[Alias("hybrid.IReviewCatalogGrain")]
public interface IReviewCatalogGrain : IGrainWithIntegerKey
{
    /// <summary>One more change stored.</summary>
    [AlwaysInterleave]
    Task Changed();

    /// <summary>The activation and how many changes it has counted.</summary>
    [AlwaysInterleave]
    Task<Listings.ShardGeneration> Generation();
}

/// <inheritdoc cref="IReviewCatalogGrain"/>
public sealed class ReviewCatalogGrain : Grain, IReviewCatalogGrain
{
    private readonly Guid _activation = Guid.NewGuid();
    private long _changes;

    public Task Changed()
    {
        _changes++;
        return Task.CompletedTask;
    }

    public Task<Listings.ShardGeneration> Generation() => Task.FromResult(new Listings.ShardGeneration(_activation, _changes));
}
