using System.Collections.Concurrent;
using System.Threading.Channels;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Sessions;

/// <summary>One authenticated peer session on this supernode.</summary>
public sealed class OpenSession
{
    private readonly Channel<SessionServerMessage> _outbox = Channel.CreateBounded<SessionServerMessage>(
        new BoundedChannelOptions(256) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly CancellationToken _callAborted;

    public OpenSession(PeerId peer, Guid sessionId, string token, CancellationToken callAborted)
    {
        Peer = peer;
        SessionId = sessionId;
        Token = token;
        _callAborted = callAborted;
        Ending = CancellationTokenSource.CreateLinkedTokenSource(callAborted);
    }

    /// <summary>Whether the call carrying the session was aborted (the client reset it, or its connection went away).</summary>
    public bool CallAborted => _callAborted.IsCancellationRequested;

    public PeerId Peer { get; }

    public Guid SessionId { get; }

    public string Token { get; }

    /// <summary>The address and port the session's connection comes from, as this supernode sees it.</summary>
    public System.Net.IPEndPoint? Observed { get; init; }

    private int _reachabilityRound;

    /// <summary>Starts a new dial-back round; older rounds still running no longer count.</summary>
    public int NextReachabilityRound() => Interlocked.Increment(ref _reachabilityRound);

    /// <summary>Whether <paramref name="round"/> is the newest round.</summary>
    public bool IsReachabilityRound(int round) => Volatile.Read(ref _reachabilityRound) == round;

    /// <summary>Cancelled when the session must end (client gone, superseded, supernode draining).</summary>
    public CancellationTokenSource Ending { get; }

    public ChannelReader<SessionServerMessage> Outgoing => _outbox.Reader;

    /// <summary>Queues a message for the peer; false once the session is ending.</summary>
    public bool TrySend(SessionServerMessage message) => _outbox.Writer.TryWrite(message);

    public void CompleteOutbox()
    {
        Closing = true;
        _outbox.Writer.TryComplete();
    }

    /// <summary>Whether the outbox was completed: the session is being ended by this supernode.</summary>
    public bool Closing { get; private set; }

    /// <summary>Whether a newer session of the same peer took over.</summary>
    public bool Superseded { get; private set; }

    private long _renewPresenceAtTicks;

    /// <summary>Whether the peer's presence is due for renewal (the first heartbeat after this time renews it).</summary>
    public bool PresenceDue(DateTimeOffset now) => now.UtcTicks >= Interlocked.Read(ref _renewPresenceAtTicks);

    /// <summary>Sets when the presence is next renewed (by the session's heartbeats or a sweep after a membership change).</summary>
    public void RenewPresenceAt(DateTimeOffset next) => Interlocked.Exchange(ref _renewPresenceAtTicks, next.UtcTicks);

    /// <summary>Tells the peer another session of its took over, and ends this one.</summary>
    public void Supersede()
    {
        Superseded = true;
        TrySend(new SessionServerMessage { Event = new SupernodeEvent { Superseded = new SessionSuperseded() } });
        CompleteOutbox();
    }

    /// <summary>How a session this supernode ended was ended (a <c>hybrid_sessions_ended_total</c> label).</summary>
    public string EndedBySupernode => Superseded ? "superseded" : "draining";
}

/// <summary>The sessions open on this supernode, by token.</summary>
public sealed class SessionHub(SupernodeMetrics metrics)
{
    private readonly ConcurrentDictionary<string, OpenSession> _byToken = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<PeerId, OpenSession> _byPeer = new();

    public int Count => _byToken.Count;

    /// <summary>The sessions open now.</summary>
    public IEnumerable<OpenSession> All => _byToken.Values;

    /// <summary>Adds a session; an older session of the same peer on this supernode is told it was superseded and ends.</summary>
    public void Add(OpenSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        _byToken[session.Token] = session;
        OpenSession? replaced = null;
        _byPeer.AddOrUpdate(session.Peer, session, (_, old) =>
        {
            replaced = old;
            return session;
        });
        metrics.SessionsOpened.Inc();
        metrics.SessionsActive.Set(_byToken.Count);
        if (replaced is not null && !ReferenceEquals(replaced, session))
        {
            replaced.Supersede();
        }
    }

    public void Remove(OpenSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        _byToken.TryRemove(session.Token, out _);
        _byPeer.TryRemove(new KeyValuePair<PeerId, OpenSession>(session.Peer, session));
        metrics.SessionsActive.Set(_byToken.Count);
    }

    /// <summary>The session whose token the call carries, or Unauthenticated saying how to get one.</summary>
    public OpenSession Require(Grpc.Core.ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return TryGet(context.RequestHeaders.GetValue(Protocol.Api.SupernodeClients.SessionHeader), out var session)
            ? session
            : throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.Unauthenticated, $"{context.Method} needs an open session on this supernode: open Session and send its token as '{Protocol.Api.SupernodeClients.SessionHeader}' metadata"));
    }

    public bool TryGet(string? token, out OpenSession session)
    {
        session = null!;
        return token is not null && _byToken.TryGetValue(token, out session!);
    }

    /// <summary>The session <paramref name="peer"/> holds on this supernode, if any.</summary>
    public bool TryGetByPeer(PeerId peer, out OpenSession session) => _byPeer.TryGetValue(peer, out session!);

    /// <summary>Tells every peer to move to another supernode, then ends their sessions.</summary>
    public void Drain(IReadOnlyList<string> alternatives)
    {
        foreach (var session in _byToken.Values)
        {
            var draining = new SupernodeDraining();
            draining.Alternatives.AddRange(alternatives);
            session.TrySend(new SessionServerMessage { Event = new SupernodeEvent { Draining = draining } });
            session.CompleteOutbox();
        }
    }
}
