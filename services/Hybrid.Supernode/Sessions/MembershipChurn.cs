namespace Hybrid.Supernode.Sessions;

/// <summary>
/// Knows whether the cluster's membership changed lately. When a silo dies, the directory entries it
/// kept are lost: a peer's grain is then activated afresh (or twice), and a presence kept in the lost
/// activation is gone, so lookups show the peer offline while it is in session here. Sessions renew
/// their presence rarely (see <see cref="Configuration.SupernodeOptions.PresenceLease"/>). So after a
/// change this supernode renews every session it holds at once (after <see cref="SweepDelay"/>, once
/// the directory has moved), and for <see cref="SettleTime"/> sessions renew on every heartbeat: a
/// lost presence is found within seconds (the renewal is refused, the session is ended as superseded
/// and its peer opens a new one, which every lookup then finds).
/// </summary>
public sealed partial class MembershipChurn(
    IClusterMembershipService membership,
    ILocalSiloDetails self,
    SessionHub hub,
    IGrainFactory grains,
    Configuration.SupernodeOptions options,
    TimeProvider time,
    ILogger<MembershipChurn> logger) : BackgroundService
{
    /// <summary>How long after a membership change the sessions held here are renewed all at once.</summary>
    public static readonly TimeSpan SweepDelay = TimeSpan.FromSeconds(1);

    /// <summary>Renewals in flight during a sweep.</summary>
    private const int SweepParallelism = 32;

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
                    _ = SweepAsync(stoppingToken);
                }

                last = now;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Renews the presence of every session held here; a session whose presence is gone is ended as superseded (its peer reconnects).</summary>
    private async Task SweepAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(SweepDelay, time, stoppingToken);
            var lost = 0;
            await Parallel.ForEachAsync(hub.All, new ParallelOptions { MaxDegreeOfParallelism = SweepParallelism, CancellationToken = stoppingToken }, async (session, _) =>
            {
                try
                {
                    var renewed = await grains.GetGrain<Hybrid.Index.Directory.IPeerGrain>(session.Peer.ToString()).RenewSession(session.SessionId, options.PresenceLease);
                    if (renewed.Succeeded)
                    {
                        session.RenewPresenceAt(time.GetUtcNow() + options.PresenceLease / 3);
                    }
                    else
                    {
                        session.Supersede();
                        Interlocked.Increment(ref lost);
                    }
                }
                catch (Exception ex) when (ex is OrleansException or TimeoutException)
                {
                    // The directory is still moving: the session's heartbeats renew it while the cluster settles.
                }
            });
            LogSwept(logger, hub.Count, lost);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster membership changed: presence renewed for {Sessions} sessions held here; {Lost} had lost it and were asked to reconnect")]
    private static partial void LogSwept(ILogger logger, int sessions, int lost);
}
