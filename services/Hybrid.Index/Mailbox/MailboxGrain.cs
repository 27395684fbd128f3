using System.Collections.Immutable;
using System.Security.Cryptography;
using Hybrid.Index.Storage;

namespace Hybrid.Index.Mailbox;

/// <summary>Durable state of a mailbox as an earlier version kept it (whole); read once and moved into items.</summary>
[GenerateSerializer, Alias("hybrid.MailboxState")]
public sealed class MailboxState
{
    [Id(0)] public List<StoredMail> Items { get; set; } = [];

    /// <summary>Delivered item id -> (sender, when the remembered delivery may be forgotten).</summary>
    [Id(1)] public Dictionary<string, DeliveredMail> Delivered { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>What a mailbox remembers of a delivered item, so its sender can learn of the delivery.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.DeliveredMail")]
public sealed record DeliveredMail([property: Id(0)] string Sender, [property: Id(1)] DateTimeOffset ForgetAfter);

/// <inheritdoc cref="IMailboxGrain"/>
/// <remarks>
/// Each waiting item and each remembered delivery is one durable item (sets <c>mailbox/{peer}</c> and
/// <c>mailbox-delivered/{peer}</c>): a deposit writes the one item it adds, an acknowledgement
/// removes what it took, so a write costs what it changes, not the whole mailbox. Every write carries
/// the activation's claim on the mailbox (<see cref="StoreClaim"/>): one left running on a supernode
/// declared dead cannot take a deposit that the mailbox's new activation, elsewhere, would not show.
/// </remarks>
public sealed class MailboxGrain(
    [PersistentState("mailbox", IndexStorage.ProviderName)] IPersistentState<MailboxState> legacy,
    IItemStore store,
    TimeProvider time) : Grain, IMailboxGrain
{
    // Senders poll for delivery; a week is plenty to learn of it.
    private static readonly TimeSpan RememberDelivery = TimeSpan.FromDays(7);

    private readonly MailboxState _state = new();

    // How many of this mailbox's items the silo-wide gauge counts now.
    private long _counted;

    private string ItemSet => $"mailbox/{this.GetPrimaryKeyString()}";

    private string DeliveredSet => $"mailbox-delivered/{this.GetPrimaryKeyString()}";

    // The mailbox's sets, written under this activation's claim (taken before they are read).
    private ClaimedItemSets _own = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _own = await ClaimedItemSets.ClaimAsync(store, this, ItemSet);
        await foreach (var (_, value) in store.ReadAllAsync(ItemSet, cancellationToken))
        {
            _state.Items.Add(MailCodec.DecodeItem(value));
        }

        _state.Items.Sort((a, b) => a.Deposited.CompareTo(b.Deposited));
        await foreach (var (itemId, value) in store.ReadAllAsync(DeliveredSet, cancellationToken))
        {
            _state.Delivered[itemId] = MailCodec.DecodeDelivered(value);
        }

        if (legacy.State.Items.Count > 0 || legacy.State.Delivered.Count > 0)
        {
            var known = _state.Items.Select(i => i.ItemId).ToHashSet(StringComparer.Ordinal);
            foreach (var item in legacy.State.Items.Where(i => !known.Contains(i.ItemId)))
            {
                await _own.PutAsync(ItemSet, item.ItemId, MailCodec.Encode(item));
                _state.Items.Add(item);
            }

            foreach (var (itemId, delivered) in legacy.State.Delivered.Where(d => !_state.Delivered.ContainsKey(d.Key)))
            {
                await _own.PutAsync(DeliveredSet, itemId, MailCodec.Encode(delivered));
                _state.Delivered[itemId] = delivered;
            }

            await legacy.ClearStateAsync(cancellationToken);
        }

        Count();
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        IndexMeters.MailboxItems.Add(-_counted);
        _counted = 0;
        return Task.CompletedTask;
    }

    public async Task<MailDepositResult> Deposit(MailDeposit deposit)
    {
        ArgumentNullException.ThrowIfNull(deposit);
        var now = time.GetUtcNow();
        await PurgeAsync(now);
        var items = _state.Items;
        var bytes = items.Sum(i => (long)i.SealedItem.Length);
        // One sender may hold only its share, so no single sender (or a flood of fresh keys from one
        // session each) can fill the mailbox against everyone else.
        var fromSender = items.Where(i => i.Sender == deposit.Sender).ToList();
        var senderBytes = fromSender.Sum(i => (long)i.SealedItem.Length);
        if (fromSender.Count >= deposit.MaxItemsPerSender || senderBytes + deposit.SealedItem.Length > deposit.MaxBytesPerSender)
        {
            return new MailDepositResult(false, string.Empty, default, $"you already have {fromSender.Count} items ({senderBytes} bytes) waiting in this mailbox; one sender may hold at most {deposit.MaxItemsPerSender} items or {deposit.MaxBytesPerSender} bytes until the recipient takes them");
        }

        if (items.Count >= deposit.MaxItems || bytes + deposit.SealedItem.Length > deposit.MaxBytes)
        {
            return new MailDepositResult(false, string.Empty, default, $"the recipient's mailbox is full ({items.Count} items, {bytes} bytes; at most {deposit.MaxItems} items, {deposit.MaxBytes} bytes)");
        }

        var item = new StoredMail(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), deposit.Sender, deposit.SealedItem, now, now + deposit.TimeToLive);
        await _own.PutAsync(ItemSet, item.ItemId, MailCodec.Encode(item));
        items.Add(item);
        Count();
        return new MailDepositResult(true, item.ItemId, item.Expires, "stored");
    }

    public Task<ImmutableArray<StoredMail>> Peek(int limit, long maxBytes)
    {
        var now = time.GetUtcNow();
        var page = ImmutableArray.CreateBuilder<StoredMail>();
        var bytes = 0L;
        foreach (var item in FairOrder(_state.Items.Where(i => i.Expires > now)).Take(Math.Clamp(limit, 1, 500)))
        {
            if (page.Count > 0 && bytes + item.SealedItem.Length > maxBytes)
            {
                break;
            }

            page.Add(item);
            bytes += item.SealedItem.Length;
        }

        return Task.FromResult(page.ToImmutable());
    }

    public async Task<int> Acknowledge(ImmutableArray<string> itemIds)
    {
        var now = time.GetUtcNow();
        var wanted = itemIds.ToHashSet(StringComparer.Ordinal);
        var removed = _state.Items.Where(i => wanted.Contains(i.ItemId)).ToList();
        if (removed.Count == 0)
        {
            return 0;
        }

        // The delivery is remembered before the item goes: a crash in between leaves an item that is
        // taken again (its recipient ignores a repeat), never a delivery its sender cannot learn of.
        var deliveries = removed.Select(i => (i.ItemId, Delivered: new DeliveredMail(i.Sender, now + RememberDelivery))).ToList();
        await Task.WhenAll(deliveries.Select(d => _own.PutAsync(DeliveredSet, d.ItemId, MailCodec.Encode(d.Delivered))));
        await Task.WhenAll(removed.Select(i => _own.RemoveAsync(ItemSet, i.ItemId)));
        foreach (var (itemId, delivered) in deliveries)
        {
            _state.Delivered[itemId] = delivered;
        }

        _state.Items.RemoveAll(i => wanted.Contains(i.ItemId));
        await PurgeAsync(now);
        Count();
        return removed.Count;
    }

    public Task<MailDeliveryStatus> Status(string sender, ImmutableArray<string> itemIds)
    {
        var delivered = ImmutableArray.CreateBuilder<string>();
        var pending = ImmutableArray.CreateBuilder<string>();
        var now = time.GetUtcNow();
        foreach (var id in itemIds)
        {
            if (_state.Delivered.TryGetValue(id, out var done) && done.Sender == sender)
            {
                delivered.Add(id);
            }
            else if (_state.Items.Any(i => i.ItemId == id && i.Sender == sender && i.Expires > now))
            {
                pending.Add(id);
            }
        }

        return Task.FromResult(new MailDeliveryStatus(delivered.ToImmutable(), pending.ToImmutable()));
    }

    /// <summary>
    /// Oldest first within each sender, senders taken in turn: a sender who filled its share of the
    /// mailbox does not hold back the others' mail behind its own.
    /// </summary>
    private static IEnumerable<StoredMail> FairOrder(IEnumerable<StoredMail> items)
    {
        var queues = items.GroupBy(i => i.Sender, StringComparer.Ordinal).Select(g => new Queue<StoredMail>(g)).ToList();
        while (queues.Count > 0)
        {
            foreach (var queue in queues)
            {
                yield return queue.Dequeue();
            }

            queues.RemoveAll(q => q.Count == 0);
        }
    }

    private void Count()
    {
        var held = _state.Items.Count;
        IndexMeters.MailboxItems.Add(held - _counted);
        _counted = held;
    }

    /// <summary>Drops expired items and deliveries old enough to forget, durably first.</summary>
    private async Task PurgeAsync(DateTimeOffset now)
    {
        var expired = _state.Items.Where(i => i.Expires <= now).Select(i => i.ItemId).ToList();
        var forgotten = _state.Delivered.Where(d => d.Value.ForgetAfter <= now).Select(d => d.Key).ToList();
        if (expired.Count == 0 && forgotten.Count == 0)
        {
            return;
        }

        await Task.WhenAll(expired.Select(id => _own.RemoveAsync(ItemSet, id)).Concat(forgotten.Select(id => _own.RemoveAsync(DeliveredSet, id))));
        var gone = expired.ToHashSet(StringComparer.Ordinal);
        _state.Items.RemoveAll(i => gone.Contains(i.ItemId));
        forgotten.ForEach(id => _state.Delivered.Remove(id));
    }
}
