namespace Hybrid.Index.Storage;

/// <summary>
/// Durable sets of small items, one set per grain (a Redis hash in a cluster, rows of a SQLite table
/// embedded): a grain writes what changed, one item at a time, instead of rewriting its whole state.
/// Every write has returned once it is as durable as the store makes anything.
/// </summary>
public interface IItemStore
{
    /// <summary>Stores (or replaces) the item <paramref name="field"/> of <paramref name="itemSet"/>.</summary>
    Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value);

    /// <summary>Removes the item <paramref name="field"/> of <paramref name="itemSet"/> (nothing when absent).</summary>
    Task RemoveAsync(string itemSet, string field);

    /// <summary>One item, or null.</summary>
    Task<byte[]?> GetAsync(string itemSet, string field);

    /// <summary>Every item of <paramref name="itemSet"/>, in no particular order.</summary>
    IAsyncEnumerable<KeyValuePair<string, byte[]>> ReadAllAsync(string itemSet, CancellationToken cancellationToken);
}
