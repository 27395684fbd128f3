namespace Hybrid.Index.Storage;

/// <summary>
/// Durable sets of small items, one set per grain (a Redis hash in a cluster, rows of a SQLite table
/// embedded): a grain writes what changed, one item at a time, instead of rewriting its whole state.
/// Every write has returned once it is as durable as the store makes anything.
/// </summary>
public interface IItemStore
{
    /// <summary>
    /// Makes the caller the one writer of <paramref name="owner"/>'s item sets: writes made with this
    /// claim are taken until the owner is claimed again (see <see cref="StoreClaim"/>). A claim may
    /// lapse after a month in which it was neither made nor written with; writes with it are then refused as superseded.
    /// </summary>
    Task<StoreClaim> ClaimAsync(string owner);

    /// <summary>
    /// Stores (or replaces) the item <paramref name="field"/> of <paramref name="itemSet"/>; with a
    /// <paramref name="claim"/>, only while it is its owner's latest (else
    /// <see cref="Orleans.Storage.InconsistentStateException"/>, and nothing is stored).
    /// </summary>
    Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value, StoreClaim? claim = null);

    /// <summary>Removes the item <paramref name="field"/> of <paramref name="itemSet"/> (nothing when absent); a claim as for <see cref="PutAsync"/>.</summary>
    Task RemoveAsync(string itemSet, string field, StoreClaim? claim = null);

    /// <summary>One item, or null.</summary>
    Task<byte[]?> GetAsync(string itemSet, string field);

    /// <summary>Every item of <paramref name="itemSet"/>, in no particular order.</summary>
    IAsyncEnumerable<KeyValuePair<string, byte[]>> ReadAllAsync(string itemSet, CancellationToken cancellationToken);
}
