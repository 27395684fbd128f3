using System.Text.Json;
using Hybrid.Index.Storage;

namespace Hybrid.Index.Reputation;

/// <summary>What the parties' reviews say of one decided order (null: that party has not said).</summary>
internal sealed record VerdictEntry(string Outcome, bool? BuyerAccepts, bool? SellerAccepts);

/// <summary>
/// A mediator's record, keyed by its PeerId: the orders it decided as reviews of them show (each
/// review carries the receipt ending in the verdict, and may say whether its author accepts it).
/// One item per order; a newer review version of either party replaces what that party said.
/// </summary>
public sealed class MediatorGrain(IItemStore items) : Grain, IMediatorGrain
{
    private readonly Dictionary<string, VerdictEntry> _orders = new(StringComparer.Ordinal);

    private string ItemSet => $"mediator/{this.GetPrimaryKeyString()}";

    // Written under this activation's claim, taken before the set is read.
    private ClaimedItemSets _own = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _own = await ClaimedItemSets.ClaimAsync(items, this, ItemSet);
        await foreach (var (orderId, value) in items.ReadAllAsync(ItemSet, cancellationToken))
        {
            _orders[orderId] = JsonSerializer.Deserialize<VerdictEntry>(value)!;
        }
    }

    public async Task Record(string orderId, string outcome, bool reviewerIsBuyer, bool? accepts)
    {
        var entry = _orders.TryGetValue(orderId, out var known) ? known with { Outcome = outcome } : new VerdictEntry(outcome, null, null);
        entry = reviewerIsBuyer ? entry with { BuyerAccepts = accepts } : entry with { SellerAccepts = accepts };
        if (entry == known)
        {
            return;
        }

        await _own.PutAsync(ItemSet, orderId, JsonSerializer.SerializeToUtf8Bytes(entry));
        _orders[orderId] = entry;
    }

    public Task<MediatorSummary> Summary() => Task.FromResult(new MediatorSummary(
        _orders.Count,
        _orders.Values.Count(e => e is { BuyerAccepts: true, SellerAccepts: true }),
        _orders.Values.Count(e => e.BuyerAccepts == false || e.SellerAccepts == false),
        _orders.Values.Count(e => e.Outcome == "buyer"),
        _orders.Values.Count(e => e.Outcome == "seller"),
        _orders.Values.Count(e => e.Outcome == "split")));
}
