namespace Hybrid.Supernode.Sessions;

/// <summary>
/// Renews the directory presence of the sessions this supernode holds. A session renews on a
/// heartbeat once a third of its lease (<see cref="Configuration.SupernodeOptions.PresenceLease"/>)
/// has passed, not on every heartbeat. When a silo dies, the directory entries it kept are lost: a
/// peer's grain is then activated afresh (or twice), and a presence kept in the lost activation is
/// gone, so lookups show the peer offline while it is in session here. So after a membership change
/// every session held here is renewed at once (after <see cref="SweepDelay"/>, once the directory has
/// moved), and for <see cref="SettleTime"/> sessions renew on every heartbeat: a lost presence is found
/// within seconds (the renewal is refused, the session is ended as superseded and its peer opens a
/// new one, which every lookup then finds).
/// </summary>
public sealed partial class PresenceRenewal(
    IClusterMembershipService membership,
    ILocalSiloDetails self,
    SessionHub hub,
    IGrainFactory grains,
    Configuration.SupernodeOptions options,
    TimeProvider time,
    ILogger<PresenceRenewal> logger) : BackgroundService
{
    /// <summary>How long after a membership change the sessions held here are renewed all at once.</summary>
    public static readonly TimeSpan SweepDelay = TimeSpan.FromSeconds(1);

    /// <summary>Renewals in flight during a sweep.</summary>
    private const int SweepParallelism = 32;

    /// <summary>How long after a membership change sessions renew on every heartbeat.</summary>
    public static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(60);

    private long _unsettledUntilTicks;

    /// <summary>Whether another silo joined, left or died within <see cref="SettleTime"/>.</summary>
    private bool Unsettled => time.GetUtcNow().UtcTicks < Interlocked.Read(ref _unsettledUntilTicks);

    /// <summary>Sets when <paramref name="session"/>, whose presence was just set or renewed, next renews it.</summary>
    public void ScheduleRenewal(OpenSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        session.RenewPresenceAt(time.GetUtcNow() + options.PresenceLease / 3);
    }

    /// <summary>
    /// On a heartbeat: renews the session's presence if it is due (or the cluster is settling).
    /// False when the presence is no longer this session's (another session of the peer took over,
    /// or it was lost): the session is then told it was superseded and ends.
    /// </summary>
    public Task<bool> RenewIfDueAsync(OpenSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        return session.PresenceDue(time.GetUtcNow()) || Unsettled ? RenewAsync(session) : Task.FromResult(true);
    }

    private async Task<bool> RenewAsync(OpenSession session)
    {
        var renewed = await grains.GetGrain<Hybrid.Index.Directory.IPeerGrain>(session.Peer.ToString()).RenewSession(session.SessionId, options.PresenceLease);
        if (!renewed.Succeeded)
        {
            session.Supersede();
            return false;
        }

        ScheduleRenewal(session);
        return true;
    }

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
                    if (!await RenewAsync(session))
                    {
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
