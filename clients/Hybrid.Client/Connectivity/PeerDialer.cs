using System.Collections.Concurrent;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Connectivity;

/// <summary>How a link reaches its peer.</summary>
public enum LinkPath
{
    /// <summary>A TCP connection to one of the peer's advertised endpoints.</summary>
    Direct,

    /// <summary>Through the supernode holding the peer's session (TLS still end to end).</summary>
    Relayed,
}

/// <summary>An open link to one peer, and why it took its path.</summary>
public sealed record PeerLinkHandle(PeerId Peer, LinkPath Path, string Address, GrpcChannel Channel, string Why = "")
{
    /// <summary>The peer protocol client over this link.</summary>
    public PeerLink.PeerLinkClient Client { get; } = new(Channel);
}

/// <summary>
/// Opens and keeps links to other peers: direct to an advertised endpoint first; when none answers
/// (NAT, firewall, a dead address) or in private mode, the same protocol through a supernode relay.
/// Either way it is mutual TLS pinned to both PeerIds.
/// </summary>
public sealed partial class PeerDialer(PeerIdentity identity, X509Certificate2 certificate, SupernodeConnection connection, bool privateMode, ILogger logger) : IDisposable
{
    /// <summary>How long a direct TCP connect to a verified endpoint may take before the dialer moves on.</summary>
    public static readonly TimeSpan DirectConnectTimeout = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long a connect to an unverified candidate may take: a LAN address or a NAT mapping either
    /// answers at once or not at all.
    /// </summary>
    public static readonly TimeSpan CandidateConnectTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Unverified candidates tried before the relay, at most.</summary>
    public const int MaxCandidatesTried = 3;

    /// <summary>Reverse links (inside connections other peers opened to this one) kept at once.</summary>
    public const int MaxReverseLinks = 64;

    /// <summary>After a punch fails, the link stays relayed this long before another punch is tried.</summary>
    public static readonly TimeSpan PunchBackoff = TimeSpan.FromMinutes(5);

    /// <summary>How long an upgraded-from relayed link stays open for the calls still running on it.</summary>
    public static readonly TimeSpan UpgradeGrace = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<PeerId, PeerLinkHandle> _links = new();
    private static readonly TimeSpan RelayRequestLifetime = TimeSpan.FromMinutes(2);
    private readonly ConcurrentDictionary<PeerId, DateTimeOffset> _punching = new();
    private int _reverses;

    /// <summary>Hole punching, when this peer can (not in private mode); null: relayed links stay relayed.</summary>
    public HolePunch? Punch { get; init; }

    /// <summary>How long a new relayed link is used before the punch starts (zero: at once; tests set it to upgrade mid-transfer).</summary>
    public TimeSpan PunchDelay { get; init; }

    /// <summary>A relayed link to the peer was replaced by a direct one: new calls go direct.</summary>
    public event EventHandler<PeerLinkHandle>? LinkUpgraded;

    /// <summary>A hole punch to the peer failed (the reason); its link stays relayed.</summary>
    public event EventHandler<(PeerId Peer, string Reason)>? PunchFailed;

    /// <summary>The links open now.</summary>
    public IReadOnlyList<PeerLinkHandle> Links => [.. _links.Values];

    /// <summary>
    /// Runs <paramref name="call"/> over a link to <paramref name="peer"/>, opening one if needed and
    /// moving to the next path when a path fails in transport. Answers from the peer (even refusals) are final.
    /// </summary>
    /// <exception cref="PeerUnreachableException">No path reached the peer (it is offline, or neither direct nor relay worked).</exception>
    public async Task<(T Result, PeerLinkHandle Link)> InvokeAsync<T>(PeerId peer, Func<PeerLink.PeerLinkClient, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (_links.TryGetValue(peer, out var cached))
        {
            try
            {
                return (await call(cached.Client, cancellationToken), cached);
            }
            catch (RpcException ex) when (IsTransportFailure(ex))
            {
                LogLinkLost(logger, peer, cached.Path, cached.Address, ex.Status.DebugException?.Message ?? ex.Status.Detail);
                Forget(peer, cached);
            }
        }

        PeerInfo info;
        try
        {
            info = await connection.LookupPeerAsync(peer, cancellationToken);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            throw new PeerUnreachableException($"{peer} is not known on this network", ex);
        }

        if (!info.Online)
        {
            throw new PeerUnreachableException($"{peer} is offline");
        }

        var failures = new List<string>();
        foreach (var (path, address, timeout, why) in Paths(info))
        {
            var handle = path == LinkPath.Direct
                ? new PeerLinkHandle(peer, path, address, DirectChannel(address, peer, timeout), why)
                : new PeerLinkHandle(peer, path, address, RelayChannel(address, peer), failures.Count == 0 ? why : $"{why}; {string.Join("; ", failures)}");
            try
            {
                var result = await call(handle.Client, cancellationToken);
                if (_links.TryAdd(peer, handle))
                {
                    LogLinked(logger, peer, path, address);
                    if (path == LinkPath.Relayed)
                    {
                        _ = UpgradeAsync(handle, info);
                    }
                }
                else
                {
                    handle.Channel.Dispose();
                }

                return (result, handle);
            }
            catch (RpcException ex) when (IsTransportFailure(ex))
            {
                handle.Channel.Dispose();
                var reason = IsKeyMismatch(ex) ? "presented another key (refused)" : ex.Status.Detail;
                failures.Add($"{path} {address}: {reason}");
                LogPathFailed(logger, peer, path, address, reason);
            }
        }

        throw new PeerUnreachableException($"could not reach {peer}: {string.Join("; ", failures)}");
    }

    /// <summary>
    /// A link straight to <paramref name="url"/>, expecting <paramref name="expected"/> there. A host
    /// presenting another key fails the TLS handshake: the call throws <see cref="PeerKeyMismatchException"/>.
    /// </summary>
    public async Task<T> CallDirectAsync<T>(string url, PeerId expected, Func<PeerLink.PeerLinkClient, CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        using var channel = DirectChannel(url, expected, DirectConnectTimeout);
        try
        {
            return await call(new PeerLink.PeerLinkClient(channel), cancellationToken);
        }
        catch (RpcException ex) when (IsKeyMismatch(ex))
        {
            throw new PeerKeyMismatchException($"the host at {url} is not {expected}: it presented another key; nothing was sent", ex);
        }
    }

    /// <summary>Drops the link to <paramref name="peer"/> (after a failure), so the next call dials again.</summary>
    public void Forget(PeerId peer, PeerLinkHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (_links.TryRemove(new KeyValuePair<PeerId, PeerLinkHandle>(peer, handle)))
        {
            handle.Channel.Dispose();
        }
    }

    /// <summary>Whether a call failed in transport (so another path may work), not by the peer's answer.</summary>
    public static bool IsTransportFailure(RpcException ex) =>
        ex?.StatusCode is StatusCode.Unavailable or StatusCode.Internal || (ex?.StatusCode == StatusCode.Cancelled && ex.Status.DebugException is IOException or HttpRequestException);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var link in _links.Values)
        {
            link.Channel.Dispose();
        }

        _links.Clear();
    }

    /// <summary>
    /// The paths to try, in order: endpoints a supernode verified by dialing back, then a few
    /// unverified candidates with a short timeout (a LAN address shared with this peer, an open NAT
    /// mapping), then the relay. In private mode only the relay (this peer's address stays hidden).
    /// </summary>
    private IEnumerable<(LinkPath Path, string Address, TimeSpan Timeout, string Why)> Paths(PeerInfo info)
    {
        if (!privateMode)
        {
            foreach (var endpoint in info.Endpoints)
            {
                yield return (LinkPath.Direct, endpoint.Url, DirectConnectTimeout, "an endpoint the supernode verified");
            }

            foreach (var candidate in info.Candidates.Where(c => Uri.TryCreate(c.Url, UriKind.Absolute, out var u) && u.Scheme == Uri.UriSchemeHttps).Take(MaxCandidatesTried))
            {
                yield return (LinkPath.Direct, candidate.Url, CandidateConnectTimeout, "an unverified candidate that answered (same network, or an open mapping)");
            }
        }

        // Through our own supernode: it relays only for peers with a session on it, and forwards to
        // the target's supernode within the cluster.
        if (connection.CurrentSupernode is { } own)
        {
            yield return (LinkPath.Relayed, own, TimeSpan.Zero, privateMode ? "private mode: this peer's address stays hidden" : info.Endpoints.Count + info.Candidates.Count == 0 ? "the peer announces no address (private mode)" : "no direct path answered");
        }
    }

    /// <summary>
    /// Tries to replace a relayed link by a direct one (a hole punch through both NATs): new calls go
    /// direct, calls already running on the relay finish there (it stays open <see cref="UpgradeGrace"/>).
    /// One punch per peer at a time; after a failure the link stays relayed for <see cref="PunchBackoff"/>.
    /// </summary>
    private async Task UpgradeAsync(PeerLinkHandle relayed, PeerInfo info)
    {
        if (Punch is not { Available: true } punch || info.Candidates.Count == 0 || privateMode)
        {
            return;
        }

        var now = DateTimeOffset.UtcNow;
        // One punch per peer at a time (MaxValue marks one running), none while a failure's backoff lasts.
        var busy = _punching.TryGetValue(relayed.Peer, out var retryAt) && retryAt > now;
        if (busy || (!_punching.TryAdd(relayed.Peer, DateTimeOffset.MaxValue) && !_punching.TryUpdate(relayed.Peer, DateTimeOffset.MaxValue, retryAt)))
        {
            return;
        }

        PeerLinkHandle? direct = null;
        try
        {
            if (PunchDelay > TimeSpan.Zero)
            {
                await Task.Delay(PunchDelay);
            }

            if (!_links.TryGetValue(relayed.Peer, out var current) || !ReferenceEquals(current, relayed))
            {
                // Upgraded meanwhile (the peer punched to this one and opened the reverse), or gone.
                _punching.TryRemove(relayed.Peer, out _);
                return;
            }

            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            var (socket, reason, attempts) = await punch.InitiateAsync(relayed.Client, info, limit.Token);
            if (socket is null && reason == HolePunch.Reversed)
            {
                // The link arrived through AcceptReverseAsync (the peer dialed this one).
                _punching.TryRemove(relayed.Peer, out _);
                return;
            }

            if (socket is null)
            {
                LogPunchFailed(logger, relayed.Peer, reason);
                _punching[relayed.Peer] = DateTimeOffset.UtcNow + PunchBackoff;
                PunchFailed?.Invoke(this, (relayed.Peer, reason));
                return;
            }

            var remote = socket.RemoteEndPoint?.ToString() ?? "?";
            var channel = await PinnedChannelAsync(new NetworkStream(socket, ownsSocket: true), relayed.Peer, limit.Token);
            direct = new PeerLinkHandle(relayed.Peer, LinkPath.Direct, $"https://{remote}", channel, $"a hole punch through both NATs, upgraded from the relay (attempt {attempts})");
            if (Adopt(direct))
            {
                // The peer gets its own direct link to this one inside this connection.
                punch.ServeReverse(direct.Client, relayed.Peer);
                direct = null;
            }

            _punching.TryRemove(relayed.Peer, out _);
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException or OperationCanceledException or RpcException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            LogPunchFailed(logger, relayed.Peer, ex.Message);
            _punching[relayed.Peer] = DateTimeOffset.UtcNow + PunchBackoff;
            PunchFailed?.Invoke(this, (relayed.Peer, ex.Message));
        }
        finally
        {
            direct?.Channel.Dispose();
        }
    }

    /// <summary>
    /// The callee's side of <c>Reverse</c>: the peer punched a connection to this one and offers the
    /// other direction inside it. This peer runs TLS pinned to the caller over the call and uses it as
    /// its direct link to the caller until the call ends.
    /// </summary>
    public async Task AcceptReverseAsync(PeerId caller, string remote, IAsyncStreamReader<RelayFrame> requests, IAsyncStreamWriter<RelayFrame> responses, CancellationToken cancellationToken)
    {
        if (privateMode)
        {
            throw Refuse.WrongState("this peer takes no direct links (private mode)");
        }

        if (Interlocked.Increment(ref _reverses) > MaxReverseLinks)
        {
            Interlocked.Decrement(ref _reverses);
            throw Refuse.Exhausted("this peer holds as many reverse links as it keeps; stay on your relay", TimeSpan.FromMinutes(1));
        }

        PeerLinkHandle? handle = null;
        try
        {
            var relay = new RelayStream(requests, responses, owner: null);
            GrpcChannel channel;
            using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                handshake.CancelAfter(TimeSpan.FromSeconds(15));
                channel = await PinnedChannelAsync(relay, caller, handshake.Token);
            }

            handle = new PeerLinkHandle(caller, LinkPath.Direct, $"https://{remote}", channel, "inside a direct connection the peer opened to this one (its hole punch or its dial-back)");
            if (!Adopt(handle))
            {
                return;
            }

            await relay.Ended.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            if (handle is not null)
            {
                Forget(caller, handle);
                handle.Channel.Dispose();
            }

            Interlocked.Decrement(ref _reverses);
        }
    }

    /// <summary>
    /// Connection reversal, the callee's side: <paramref name="caller"/> is reachable and asked this
    /// peer to dial it. Dials its verified endpoints (TLS pinned to it), adopts that as this peer's
    /// direct link and opens <c>Reverse</c> on it for the caller's link to this one. Null when done,
    /// else why not.
    /// </summary>
    public async Task<string?> DialBackAsync(PeerId caller, CancellationToken cancellationToken)
    {
        if (privateMode || Punch is null)
        {
            return "this peer takes no direct links (private mode)";
        }

        var info = await connection.LookupPeerAsync(caller, cancellationToken);
        foreach (var endpoint in info.Endpoints.Take(HolePunch.MaxAddresses))
        {
            if (!Uri.TryCreate(endpoint.Url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
            {
                continue;
            }

            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                connect.CancelAfter(DirectConnectTimeout);
                await socket.ConnectAsync(uri.DnsSafeHost, uri.Port, connect.Token);
                var channel = await PinnedChannelAsync(new NetworkStream(socket, ownsSocket: true), caller, connect.Token);
                var handle = new PeerLinkHandle(caller, LinkPath.Direct, endpoint.Url, channel, "an endpoint the supernode verified (dialed back on the peer's request)");
                if (!Adopt(handle))
                {
                    // A direct link is open already: the caller's side goes inside that one.
                    handle.Channel.Dispose();
                    if (!_links.TryGetValue(caller, out var existing))
                    {
                        return "the direct link to the caller closed meanwhile";
                    }

                    handle = existing;
                }

                Punch.ServeReverse(handle.Client, caller);
                return null;
            }
            catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or OperationCanceledException)
            {
                socket.Dispose();
                LogPathFailed(logger, caller, LinkPath.Direct, endpoint.Url, ex.Message);
            }
        }

        return "none of its verified endpoints answered from here";
    }

    /// <summary>
    /// Makes <paramref name="direct"/> the link to its peer when none is open or the open one is
    /// relayed (the relayed one stays open <see cref="UpgradeGrace"/> for calls still on it); false
    /// when a direct link is already open.
    /// </summary>
    private bool Adopt(PeerLinkHandle direct)
    {
        while (true)
        {
            if (!_links.TryGetValue(direct.Peer, out var current))
            {
                if (_links.TryAdd(direct.Peer, direct))
                {
                    LogLinked(logger, direct.Peer, LinkPath.Direct, direct.Address);
                    return true;
                }

                continue;
            }

            if (current.Path == LinkPath.Direct)
            {
                return false;
            }

            if (_links.TryUpdate(direct.Peer, direct, current))
            {
                LogLinked(logger, direct.Peer, LinkPath.Direct, direct.Address);
                LinkUpgraded?.Invoke(this, direct);
                _ = Task.Delay(UpgradeGrace, CancellationToken.None).ContinueWith(_ => current.Channel.Dispose(), TaskScheduler.Default);
                return true;
            }
        }
    }

    /// <summary>
    /// Runs TLS pinned to <paramref name="peer"/> over <paramref name="inner"/> (a punched socket, a
    /// dialed-back socket, a reverse stream) and returns a channel over it; the stream is closed when
    /// the handshake fails.
    /// </summary>
    private async Task<GrpcChannel> PinnedChannelAsync(Stream inner, PeerId peer, CancellationToken cancellationToken)
    {
        var tls = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(PeerTls.ClientOptions(certificate, peer), cancellationToken);
            return PunchedChannel(tls);
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A channel over a punched connection whose TLS (pinned to the peer) is already done: plain
    /// HTTP/2 inside it. It connects once; when that connection ends, calls fail in transport and
    /// the dialer opens a new link.
    /// </summary>
    private static GrpcChannel PunchedChannel(Stream tls)
    {
        var handed = 0;
        return GrpcChannel.ForAddress("http://127.0.0.1:9", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                InitialHttp2StreamWindowSize = PeerProtocol.StreamWindowBytes,
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
                ConnectCallback = (_, _) => Interlocked.Exchange(ref handed, 1) == 0
                    ? ValueTask.FromResult(tls)
                    : ValueTask.FromException<Stream>(new IOException("the punched connection ended; dial again")),
            },
            DisposeHttpClient = true,
            MaxReceiveMessageSize = PeerProtocol.MaxMessageBytes,
            MaxSendMessageSize = PeerProtocol.MaxMessageBytes,
        });
    }

    private GrpcChannel DirectChannel(string url, PeerId expected, TimeSpan connectTimeout) => GrpcChannel.ForAddress(url, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout,
            InitialHttp2StreamWindowSize = PeerProtocol.StreamWindowBytes,
            SslOptions = PeerTls.ClientOptions(certificate, expected),
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        },
        DisposeHttpClient = true,
        MaxReceiveMessageSize = PeerProtocol.MaxMessageBytes,
        MaxSendMessageSize = PeerProtocol.MaxMessageBytes,
    });

    private GrpcChannel RelayChannel(string supernodeUrl, PeerId expected) =>
        // An IP literal authority: the name never appears in a plaintext SNI, even inside the relay.
        GrpcChannel.ForAddress("https://127.0.0.1:9", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(15),
                InitialHttp2StreamWindowSize = PeerProtocol.StreamWindowBytes,
                SslOptions = PeerTls.ClientOptions(certificate, expected),
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
                ConnectCallback = (_, ct) => OpenRelayAsync(supernodeUrl, expected, ct),
            },
            DisposeHttpClient = true,
            MaxReceiveMessageSize = PeerProtocol.MaxMessageBytes,
            MaxSendMessageSize = PeerProtocol.MaxMessageBytes,
        });

    private async ValueTask<Stream> OpenRelayAsync(string supernodeUrl, PeerId target, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var request = SignedEnvelopes.Sign(identity, EnvelopeKinds.RelayRequest, (ulong)now.ToUnixTimeMilliseconds(), new RelayRequest { Target = target.ToString() }, now, now + RelayRequestLifetime);
        AsyncDuplexStreamingCall<RelayFrame, RelayFrame> call;
        string sessionUrl;
        try
        {
            // The call goes to the supernode of this peer's session (its host serves the relay port).
            call = connection.RelayCall(out sessionUrl, CancellationToken.None);
        }
        catch (InvalidOperationException ex)
        {
            throw new IOException($"cannot relay to {target}: {ex.Message}", ex);
        }

        try
        {
            await call.RequestStream.WriteAsync(new RelayFrame { Open = request }, cancellationToken);
            return await RelayLinks.AwaitAsync(call, sessionUrl, cancellationToken);
        }
        catch (RpcException ex)
        {
            call.Dispose();
            throw new IOException($"the relay at {supernodeUrl} refused a link to {target}: {ex.Status.Detail} ({ex.StatusCode})", ex);
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    private static bool IsKeyMismatch(RpcException ex)
    {
        for (Exception? e = ex.Status.DebugException; e is not null; e = e.InnerException)
        {
            if (e is AuthenticationException)
            {
                return true;
            }
        }

        return false;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The link to {Peer} stays relayed: the hole punch failed ({Reason})")]
    private static partial void LogPunchFailed(ILogger logger, PeerId peer, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "The link to {Peer} ({Path}, {Address}) failed ({Reason}); dialing again")]
    private static partial void LogLinkLost(ILogger logger, PeerId peer, LinkPath path, string address, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Linked to {Peer} ({Path}, {Address})")]
    private static partial void LogLinked(ILogger logger, PeerId peer, LinkPath path, string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "Could not link to {Peer} {Path} via {Address}: {Reason}")]
    private static partial void LogPathFailed(ILogger logger, PeerId peer, LinkPath path, string address, string reason);
}

/// <summary>Limits of the peer protocol.</summary>
public static class PeerProtocol
{
    /// <summary>Largest message on a peer link: one chunk of goods data plus framing.</summary>
    public const int MaxMessageBytes = 2 * 1024 * 1024;

    /// <summary>
    /// HTTP/2 receive window per stream for peer links and the supernode session channel: a goods
    /// transfer keeps several chunks in flight without waiting for window updates (the default 64 KiB
    /// grows only after round trips, which through a relay are long).
    /// </summary>
    public const int StreamWindowBytes = 4 * 1024 * 1024;
}
