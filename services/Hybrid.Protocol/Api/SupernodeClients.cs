using Grpc.Core;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Api;

/// <summary>A supernode's public API over one channel: one generated client per capability.</summary>
public sealed class SupernodeClients
{
    /// <summary>Metadata key carrying the session token on calls that need a session.</summary>
    public const string SessionHeader = "hybrid-session";

    public SupernodeClients(ChannelBase channel)
        : this((channel ?? throw new ArgumentNullException(nameof(channel))).CreateCallInvoker())
    {
    }

    public SupernodeClients(CallInvoker invoker)
    {
        Directory = new DirectoryApi.DirectoryApiClient(invoker);
        Listings = new ListingsApi.ListingsApiClient(invoker);
        Relay = new RelayApi.RelayApiClient(invoker);
        Mailbox = new MailboxApi.MailboxApiClient(invoker);
        Reputation = new ReputationApi.ReputationApiClient(invoker);
    }

    /// <summary>Sessions, look-ups, the supernode list, profiles.</summary>
    public DirectoryApi.DirectoryApiClient Directory { get; }

    /// <summary>Publishing, withdrawing, reading and searching listings.</summary>
    public ListingsApi.ListingsApiClient Listings { get; }

    /// <summary>Relayed links between peers that cannot reach each other.</summary>
    public RelayApi.RelayApiClient Relay { get; }

    /// <summary>Sealed items for offline peers.</summary>
    public MailboxApi.MailboxApiClient Mailbox { get; }

    /// <summary>Reviews, replies and reputation.</summary>
    public ReputationApi.ReputationApiClient Reputation { get; }
}
