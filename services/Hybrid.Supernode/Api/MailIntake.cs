using Google.Protobuf;
using Grpc.Core;
using Hybrid.Index.Mailbox;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Sessions;

namespace Hybrid.Supernode.Api;

/// <summary>
/// Puts a sealed item in a registered recipient's mailbox and reports on a sender's items, whether
/// the sender deposited here or a federated cluster forwarded the item from its sender.
/// </summary>
public sealed class MailIntake(IGrainFactory grains, SessionHub hub, RequestLimits limits, IdentityAdmission admission, SupernodeMetrics metrics, SupernodeOptions options)
{
    /// <summary>The four sealed parts of <paramref name="item"/>, checked; throws InvalidArgument or ResourceExhausted.</summary>
    public SealedItem Sealed(SealedItem? item)
    {
        if (item is not { Ciphertext.IsEmpty: false, Nonce.Length: 12, Tag.Length: 16, EphemeralPublicKey.Length: > 0 and <= 256 })
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "a mailbox item must be sealed (ephemeral key, 12-byte nonce, ciphertext, 16-byte tag)"));
        }

        // Store the four sealed parts only: nothing a sender adds beside them reaches the recipient.
        var sealedItem = new SealedItem { EphemeralPublicKey = item.EphemeralPublicKey, Nonce = item.Nonce, Ciphertext = item.Ciphertext, Tag = item.Tag };
        if (sealedItem.CalculateSize() != item.CalculateSize())
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "a mailbox item carries fields beside the ephemeral key, nonce, ciphertext and tag; send only those"));
        }

        if (sealedItem.CalculateSize() > options.MailboxMaxItemBytes)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"a mailbox item is {sealedItem.CalculateSize()} bytes; at most {options.MailboxMaxItemBytes} (Supernode:MailboxMaxItemBytes)"));
        }

        return sealedItem;
    }

    /// <summary>Deposits <paramref name="item"/> (already <see cref="Sealed"/>) from <paramref name="sender"/>; NotFound for a recipient not registered here.</summary>
    public async Task<DepositMailResponse> DepositAsync(PeerId sender, PeerId recipient, SealedItem item)
    {
        ArgumentNullException.ThrowIfNull(item);

        // Mail goes only to identities the network knows (a sender sealed to a key it looked up), so
        // nobody can make mailboxes for made-up peers; and each sender has an hourly byte budget.
        if (!await admission.IsRegisteredAsync(recipient))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"no peer {recipient} has registered on this network"));
        }

        limits.MailDeposit(sender, item.CalculateSize());
        var result = await grains.GetGrain<IMailboxGrain>(recipient.ToString()).Deposit(new MailDeposit(
            sender.ToString(), item.ToByteArray(), options.MailboxTimeToLive, options.MailboxMaxItems, options.MailboxMaxBytes,
            Math.Max(1, (int)(options.MailboxMaxItems * options.MailboxSenderShare)), Math.Max(options.MailboxMaxItemBytes, (long)(options.MailboxMaxBytes * options.MailboxSenderShare))));
        if (!result.Stored)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, result.Message));
        }

        metrics.MailDeposited.Inc();
        if (hub.TryGetByPeer(recipient, out var online))
        {
            online.TrySend(new SessionServerMessage { Event = new SupernodeEvent { MailWaiting = new MailWaiting { Count = 1 } } });
        }

        return new DepositMailResponse { ItemId = result.ItemId, ExpiresMs = result.Expires.ToUnixTimeMilliseconds() };
    }

    /// <summary>Which of <paramref name="itemIds"/> (deposited by <paramref name="sender"/> for <paramref name="recipient"/>) were delivered, which wait.</summary>
    public async Task<MailStatusResponse> StatusAsync(PeerId sender, PeerId recipient, IEnumerable<string> itemIds)
    {
        var status = await grains.GetGrain<IMailboxGrain>(recipient.ToString()).Status(sender.ToString(), [.. itemIds.Take(500)]);
        var response = new MailStatusResponse();
        response.Delivered.AddRange(status.Delivered);
        response.Pending.AddRange(status.Pending);
        return response;
    }
}
