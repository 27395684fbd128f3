namespace Hybrid.Supernode.Sessions;

/// <summary>
/// Knows whether the cluster's membership changed lately. While the grain directory settles after a
/// silo joins or dies, a peer's grain can be activated afresh (or twice), and a presence kept in a
/// lost activation is gone. Sessions renew their presence rarely (see
/// <see cref="Configuration.SupernodeOptions.PresenceLease"/>); for <see cref="SettleTime"/> after a
/// change they renew on every heartbeat, so a lost presence is found (the renewal is refused, the
/// session is ended as superseded and its peer opens a new one) within a heartbeat or two.
/// </summary>
public sealed class MembershipChurn(IClusterMembershipService membership, ILocalSiloDetails self, TimeProvider time) : BackgroundService
{
    /// <summary>How long after a membership change sessions renew on every heartbeat.</summary>
    public static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(60);

    private long _unsettledUntilTicks;

    /// <summary>Whether another silo joined, left or died within <see cref="SettleTime"/>.</summary>
    public bool Unsettled => time.GetUtcNow().UtcTicks < Interlocked.Read(ref _unsettledUntilTicks);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        HashSet<(SiloAddress, SiloStatus)>? last = null;
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stoppingToken))
            {
                // Compared by who is in which state: the table's version also moves for changes that move
                // no grain. This silo's own joining is not a change for its sessions: they open after it.
                var now = snapshot.Members.Values.Where(m => !m.SiloAddress.Equals(self.SiloAddress)).Select(m => (m.SiloAddress, m.Status)).ToHashSet();
                if (last is not null && !now.SetEquals(last))
                {
                    Interlocked.Exchange(ref _unsettledUntilTicks, (time.GetUtcNow() + SettleTime).UtcTicks);
                }

                last = now;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
