namespace Hybrid.Index.Storage;

/// <summary>
/// The item sets one grain alone writes, written under its activation's claim (see
/// <see cref="StoreClaim"/>), which is taken before the sets are read. A write refused because the
/// owner was claimed elsewhere since ends the activation and is thrown to the caller, whose retry
/// reaches the activation that holds the sets now.
/// </summary>
public sealed class ClaimedItemSets
{
    private readonly IItemStore _store;
    private readonly IGrainBase _grain;
    private readonly StoreClaim _claim;

    private ClaimedItemSets(IItemStore store, IGrainBase grain, StoreClaim claim)
    {
        _store = store;
        _grain = grain;
        _claim = claim;
    }

    /// <summary>Claims <paramref name="owner"/>'s sets for <paramref name="grain"/>'s activation; read them after this.</summary>
    public static async Task<ClaimedItemSets> ClaimAsync(IItemStore store, IGrainBase grain, string owner)
    {
        ArgumentNullException.ThrowIfNull(store);
        return new(store, grain, await store.ClaimAsync(owner));
    }

    public Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value) => ClaimedAsync(_store.PutAsync(itemSet, field, value, _claim));

    public Task RemoveAsync(string itemSet, string field) => ClaimedAsync(_store.RemoveAsync(itemSet, field, _claim));

    private async Task ClaimedAsync(Task write)
    {
        try
        {
            await write;
        }
        catch (Orleans.Storage.InconsistentStateException)
        {
            _grain.DeactivateOnIdle();
            throw;
        }
    }
}
