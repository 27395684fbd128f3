using System.Collections.Immutable;
using System.Security.Cryptography;

namespace Hybrid.Index.Mailbox;

/// <summary>Durable state of a mailbox.</summary>
[GenerateSerializer]
public sealed class MailboxState
{
    [Id(0)] public List<StoredMail> Items { get; set; } = [];

    /// <summary>Delivered item id -> (sender, when the remembered delivery may be forgotten).</summary>
    [Id(1)] public Dictionary<string, DeliveredMail> Delivered { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>What a mailbox remembers of a delivered item, so its sender can learn of the delivery.</summary>
[GenerateSerializer, Immutable]
public sealed record DeliveredMail([property: Id(0)] string Sender, [property: Id(1)] DateTimeOffset ForgetAfter);

/// <inheritdoc cref="IMailboxGrain"/>
public sealed class MailboxGrain(
    [PersistentState("mailbox", IndexStorage.ProviderName)] IPersistentState<MailboxState> state,
    TimeProvider time) : Grain, IMailboxGrain
{
    // Senders poll for delivery; a week is plenty to learn of it.
    private static readonly TimeSpan RememberDelivery = TimeSpan.FromDays(7);

    // How many of this mailbox's items the silo-wide gauge counts now.
    private long _counted;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Count();
        return Task.CompletedTask;
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
        Purge(now);
        var items = state.State.Items;
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
        items.Add(item);
        await state.WriteStateAsync();
        Count();
        return new MailDepositResult(true, item.ItemId, item.Expires, "stored");
    }

    public Task<ImmutableArray<StoredMail>> Peek(int limit, long maxBytes)
    {
        var now = time.GetUtcNow();
        var page = ImmutableArray.CreateBuilder<StoredMail>();
        var bytes = 0L;
        foreach (var item in FairOrder(state.State.Items.Where(i => i.Expires > now)).Take(Math.Clamp(limit, 1, 500)))
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
        var removed = state.State.Items.Where(i => wanted.Contains(i.ItemId)).ToList();
        if (removed.Count == 0)
        {
            return 0;
        }

        foreach (var item in removed)
        {
            state.State.Items.Remove(item);
            state.State.Delivered[item.ItemId] = new DeliveredMail(item.Sender, now + RememberDelivery);
        }

        Purge(now);
        await state.WriteStateAsync();
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
            if (state.State.Delivered.TryGetValue(id, out var done) && done.Sender == sender)
            {
                delivered.Add(id);
            }
            else if (state.State.Items.Any(i => i.ItemId == id && i.Sender == sender && i.Expires > now))
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
        var held = state.State.Items.Count;
        IndexMeters.MailboxItems.Add(held - _counted);
        _counted = held;
    }

    private void Purge(DateTimeOffset now)
    {
        state.State.Items.RemoveAll(i => i.Expires <= now);
        foreach (var id in state.State.Delivered.Where(d => d.Value.ForgetAfter <= now).Select(d => d.Key).ToList())
        {
            state.State.Delivered.Remove(id);
        }
    }
}
