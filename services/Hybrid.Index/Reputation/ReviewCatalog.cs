using System.Buffers.Binary;
using Hybrid.Index.Federation;
using Hybrid.Index.Storage;

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

    /// <summary>Records the versions held of one review (idempotent).</summary>
    public static Task PutAsync(IItemStore items, string reviewId, ulong version, ulong replyVersion)
    {
        ArgumentNullException.ThrowIfNull(items);
        var value = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(value, version);
        BinaryPrimitives.WriteUInt64BigEndian(value.AsSpan(8), replyVersion);
        return items.PutAsync(ItemSet, reviewId, value);
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
