using Orleans.Concurrency;

namespace Hybrid.Index.Directory;

/// <summary>
/// One peer of the network, keyed by its PeerId: its public key and signed profile (durable)
/// and its presence (soft state held under a lease that the supernode with the session renews).
/// </summary>
[Alias("hybrid.IPeerGrain")]
public interface IPeerGrain : IGrainWithStringKey
{
    /// <summary>Opens a session: stores the key and a newer profile, marks the peer online. A newer session replaces an older one.</summary>
    Task<IndexResult> OpenSession(SessionClaim claim);

    /// <summary>Extends the lease of the current session; refused when another session took over.</summary>
    Task<IndexResult> RenewSession(Guid sessionId, TimeSpan lease);

    /// <summary>Changes the endpoints the current session announces (candidates until verified; verified ones still announced stay verified).</summary>
    Task<IndexResult> UpdateEndpoints(Guid sessionId, IReadOnlyList<string> endpoints);

    /// <summary>
    /// Records a dial-back of the current session: <paramref name="verified"/> (announced endpoints that
    /// answered with the peer's key) are offered as reachable, <paramref name="candidates"/> are not.
    /// </summary>
    Task<IndexResult> UpdateReachability(Guid sessionId, IReadOnlyList<string> verified, IReadOnlyList<string> candidates);

    /// <summary>Ends a session; the peer goes offline unless another session took over.</summary>
    Task CloseSession(Guid sessionId);

    /// <summary>Replaces the signed profile with a newer version.</summary>
    Task<IndexResult> PublishProfile(byte[] publicKey, SignedProfile profile);

    /// <summary>The peer as the index knows it, or null when the peer never registered.</summary>
    [AlwaysInterleave]
    Task<PeerSnapshot?> Describe();

    /// <summary>
    /// Whether this identity is known to the network; with <paramref name="mayCreate"/> it becomes known
    /// (the caller has checked its work stamp and charged the new-identity budgets).
    /// </summary>
    Task<IndexResult> Admit(byte[] publicKey, bool mayCreate);
}
