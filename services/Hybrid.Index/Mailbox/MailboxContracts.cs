using System.Collections.Immutable;

namespace Hybrid.Index.Mailbox;

/// <summary>
/// A peer's mailbox on the supernodes, keyed by its PeerId: sealed items left for it while it was
/// offline. The supernodes hold only ciphertext (sealed to the recipient's key). Items stay until
/// the recipient acknowledges them or their time to live runs out.
/// </summary>
[Alias("hybrid.IMailboxGrain")]
public interface IMailboxGrain : IGrainWithStringKey
{
    /// <summary>Stores a sealed item; refused when the mailbox is full. Acknowledged only once durable.</summary>
    Task<MailDepositResult> Deposit(MailDeposit deposit);

    /// <summary>
    /// Items waiting, oldest first (they stay until acknowledged): at most <paramref name="limit"/> of them
    /// and, past the first, no more than <paramref name="maxBytes"/> of sealed bytes, so a reply always fits.
    /// </summary>
    Task<ImmutableArray<StoredMail>> Peek(int limit, long maxBytes);

    /// <summary>Removes acknowledged items and remembers them as delivered (for their senders' status).</summary>
    Task<int> Acknowledge(ImmutableArray<string> itemIds);

    /// <summary>Of <paramref name="itemIds"/> deposited by <paramref name="sender"/>: which were delivered, which still wait.</summary>
    Task<MailDeliveryStatus> Status(string sender, ImmutableArray<string> itemIds);
}

/// <summary>A sealed item as deposited.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.MailDeposit")]
public sealed record MailDeposit(
    [property: Id(0)] string Sender,
    [property: Id(1)] byte[] SealedItem,
    [property: Id(2)] TimeSpan TimeToLive,
    [property: Id(3)] int MaxItems,
    [property: Id(4)] long MaxBytes,
    [property: Id(5)] int MaxItemsPerSender,
    [property: Id(6)] long MaxBytesPerSender);

/// <summary>One stored item.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.StoredMail")]
public sealed record StoredMail(
    [property: Id(0)] string ItemId,
    [property: Id(1)] string Sender,
    [property: Id(2)] byte[] SealedItem,
    [property: Id(3)] DateTimeOffset Deposited,
    [property: Id(4)] DateTimeOffset Expires);

/// <summary>The outcome of a deposit.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.MailDepositResult")]
public sealed record MailDepositResult(
    [property: Id(0)] bool Stored,
    [property: Id(1)] string ItemId,
    [property: Id(2)] DateTimeOffset Expires,
    [property: Id(3)] string Message);

/// <summary>Delivery status of a sender's items.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.MailDeliveryStatus")]
public sealed record MailDeliveryStatus(
    [property: Id(0)] ImmutableArray<string> Delivered,
    [property: Id(1)] ImmutableArray<string> Pending);
