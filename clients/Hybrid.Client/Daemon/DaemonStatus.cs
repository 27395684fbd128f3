using Hybrid.Client.Connectivity;
using Hybrid.Client.Store;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Identity;

namespace Hybrid.Client.Daemon;

/// <summary>What the daemon is doing: its identity, session, links, recent events and refusals.</summary>
public sealed class DaemonStatus
{
    private const int EventsKept = 20;
    private readonly Queue<string> _events = new();
    private readonly PeerDaemonOptions _options;
    private readonly PeerIdentity _identity;
    private readonly LocalStore _store;
    private readonly SupernodeConnection _connection;
    private readonly PeerDialer _dialer;
    private readonly PeerBudgets _budgets;
    private readonly TimeProvider _time;

    public DaemonStatus(PeerDaemonOptions options, PeerIdentity identity, LocalStore store, SupernodeConnection connection, PeerDialer dialer, PeerBudgets budgets, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(dialer);
        (_options, _identity, _store, _connection, _dialer, _budgets, _time) = (options, identity, store, connection, dialer, budgets, time);
        connection.Connected += (_, e) => Remember($"connected to {e.SupernodeUrl}");
        connection.FailedOver += (_, e) => Remember($"moved from {e.PreviousUrl} to {e.SupernodeUrl}");
        connection.ForgedAnswerReceived += (_, e) => Remember($"dropped a forged answer from {e.SupernodeUrl}: {e.Message}");
        connection.Disconnected += (_, e) => Remember($"lost {e.SupernodeUrl}: {e.Reason}");
        dialer.LinkUpgraded += (_, link) => Remember($"link to {link.Peer} upgraded to direct ({link.Address}, by hole punch)");
        dialer.PunchFailed += (_, e) => Remember($"hole punch to {e.Peer} failed: {e.Reason}; the link stays relayed");
        connection.ReachabilityChanged += (_, e) => Remember(e.Reachable
            ? $"reachable directly at {string.Join(", ", e.Checks.Where(c => c.Reachable).Select(c => c.Url))} (dialed back by {e.Supernode})"
            : $"not reachable directly (dialed back by {e.Supernode}; seen from {e.ObservedAddress}): other peers will reach this one through a relay");
    }

    /// <summary>The full path of the daemon's log file.</summary>
    public string LogFile => Path.Combine(_options.HomePath, DaemonLogging.RelativePath);

    /// <summary>Adds a line to the recent events (the newest <see cref="EventsKept"/> are kept).</summary>
    public void Remember(string what)
    {
        lock (_events)
        {
            _events.Enqueue($"{_time.GetUtcNow():HH:mm:ss} {what}");
            while (_events.Count > EventsKept)
            {
                _events.Dequeue();
            }
        }
    }

    /// <summary>The status as the control API reports it.</summary>
    public StatusReply Build(IReadOnlyList<string> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var reply = new StatusReply
        {
            PeerId = _identity.Id.ToString(),
            DisplayName = _options.DisplayName,
            Supernode = _connection.CurrentSupernode ?? string.Empty,
            Private = _options.Private,
            MailboxPending = _store.PendingMail().Count,
            MailRefused = _store.RefusedMailCount(),
            ForgedAnswers = _connection.ForgedAnswers,
            LogFile = LogFile,
            PeerCallsRefused = _budgets.Refused,
            ObservedAddress = _connection.ObservedAddress ?? string.Empty,
        };
        if (_connection.Reachability is { } reachability)
        {
            reply.Reachability = new ReachabilityView { Reachable = reachability.Reachable, Supernode = reachability.Supernode, CheckedMs = reachability.At.ToUnixTimeMilliseconds() };
            reply.Reachability.Endpoints.AddRange(reachability.Checks.Select(c => new EndpointView { Url = c.Url, Reachable = c.Reachable, Reason = c.Reason }));
        }

        reply.Refused.AddRange(_store.RefusedMail(5).Select(r => new RefusedMail { ItemId = r.ItemId, Sender = r.Sender, Reason = r.Reason, RefusedMs = r.RefusedMs }));
        reply.Endpoints.AddRange(endpoints);
        lock (_events)
        {
            reply.Events.AddRange(_events);
        }

        reply.Links.AddRange(_dialer.Links.Select(l => new LinkView
        {
            PeerId = l.Peer.ToString(),
            Path = l.Path == LinkPath.Direct ? "direct" : "relayed",
            Address = l.Address,
            Why = l.Why,
        }));
        return reply;
    }
}
