namespace Hybrid.Index.Relay;

/// <summary>
/// A one-time ticket for a relayed link forwarded between supernodes of one cluster, keyed by a
/// random id. The dialer's supernode (which checked the dialer's session) issues it; the target's
/// supernode redeems it before piping. Grains are reachable only inside the cluster, so a client
/// cannot forge a forwarded request.
/// </summary>
[Alias("hybrid.IRelayTicketGrain")]
public interface IRelayTicketGrain : IGrainWithStringKey
{
    /// <summary>Records that <paramref name="dialer"/> may open one link to <paramref name="target"/> until <paramref name="expires"/>.</summary>
    Task Issue(string dialer, string target, DateTimeOffset expires);

    /// <summary>Whether the ticket is valid for this dialer and target; it is spent either way.</summary>
    Task<bool> Redeem(string dialer, string target);
}

/// <inheritdoc cref="IRelayTicketGrain"/>
public sealed class RelayTicketGrain(TimeProvider time) : Grain, IRelayTicketGrain
{
    private (string Dialer, string Target, DateTimeOffset Expires)? _ticket;

    public Task Issue(string dialer, string target, DateTimeOffset expires)
    {
        _ticket = (dialer, target, expires);
        // Held in memory only, for seconds: a ticket lost with its silo just means the dialer retries.
        DelayDeactivation(expires - time.GetUtcNow() + TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    public Task<bool> Redeem(string dialer, string target)
    {
        var valid = _ticket is { } t && t.Dialer == dialer && t.Target == target && t.Expires > time.GetUtcNow();
        _ticket = null;
        DeactivateOnIdle();
        return Task.FromResult(valid);
    }
}
