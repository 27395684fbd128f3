namespace Hybrid.Index.Storage;

/// <summary>
/// A grain activation's claim on what it alone writes in a store: a search shard's listings, a
/// mailbox's item sets. An activation claims before it reads its state, and the store takes its writes
/// only while its claim is the owner's latest. So an activation left running where the cluster has
/// declared its supernode dead (frozen past failure detection, while the grain activated elsewhere)
/// cannot store what the owner's new activation, which read the store before, would never learn of:
/// the store refuses it (<see cref="Orleans.Storage.InconsistentStateException"/>), and the stale
/// activation goes. The fencing token of a lease, kept by the store itself.
/// </summary>
/// <param name="Owner">What is claimed: <c>listings/{shard}</c>, <c>mailbox/{peer}</c>.</param>
/// <param name="Number">Larger than every earlier claim of the owner.</param>
public readonly record struct StoreClaim(string Owner, long Number)
{
    /// <summary>The owner name of a search shard's claims.</summary>
    public static string Listings(int shard) => $"listings/{shard}";

    /// <summary>What a store throws for a write whose claim is no longer its owner's latest.</summary>
    public static Orleans.Storage.InconsistentStateException Superseded(string owner, long claim, long latest) => new(
        $"{owner} has moved to another supernode (claim {latest}) while this one (claim {claim}) was writing; nothing was stored",
        latest.ToString(System.Globalization.CultureInfo.InvariantCulture),
        claim.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
