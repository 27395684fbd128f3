using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// A peer's link to the supernode network: starts from a seed list, learns the live supernodes,
/// keeps one authenticated session open, and when its supernode dies or drains, re-opens the
/// session on another one (immediately, then with capped exponential backoff while none answers).
/// </summary>
public sealed partial class SupernodeConnection : IAsyncDisposable
{
    /// <summary>Metadata key carrying the session token on authenticated calls.</summary>
    public const string SessionHeader = Protocol.Api.SupernodeClients.SessionHeader;

    private static readonly TimeSpan ProofLifetime = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan ProfileLifetime = TimeSpan.FromDays(365);
    private static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Most supernodes remembered besides the seeds.</summary>
    public const int MaxKnownSupernodes = 64;

    private IReadOnlyList<string> _advertised;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> _tlsKeys = new(StringComparer.Ordinal);

    private readonly PeerIdentity _identity;
    private readonly SupernodeConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ResiliencePipeline _reconnect;
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly SignedEnvelope _profile;
    private readonly List<string> _known;
    private readonly List<string> _seeds;
    private readonly List<GrpcChannel> _retired = [];
    private volatile bool _sendProfile = true;
    private readonly WorkStampStore _workStamps;
    private int _forgedAnswers;
    private TaskCompletionSource<ActiveSession> _session = NewSessionSource();
    private Task? _loop;
    private string? _lastUrl;

    /// <summary>Creates the connection; nothing is sent until <see cref="Start"/>.</summary>
    public SupernodeConnection(PeerIdentity identity, SupernodeConnectionOptions options, ILogger<SupernodeConnection>? logger = null, TimeProvider? time = null)
    {
        _advertised = options?.Endpoints ?? [];
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Seeds.Count == 0)
        {
            throw new ArgumentException("at least one supernode URL is needed", nameof(options));
        }

        _identity = identity;
        _workStamps = new WorkStampStore(identity, options.WorkStampFile);
        _options = options;
        _logger = logger ?? NullLogger<SupernodeConnection>.Instance;
        _time = time ?? TimeProvider.System;
        _seeds = [.. options.Seeds.Select(Normalize).Distinct(StringComparer.Ordinal)];
        _known = [.. _seeds];
        var now = _time.GetUtcNow();
        _profile = SignedEnvelopes.Sign(
            identity,
            EnvelopeKinds.Profile,
            (ulong)now.ToUnixTimeMilliseconds(),
            new PeerProfile { DisplayName = options.DisplayName, About = options.About },
            now,
            now + ProfileLifetime);
        _reconnect = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<NoSupernodeAnsweredException>(),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.InitialBackoff,
                MaxDelay = options.MaxBackoff,
            })
            .Build();
    }

    /// <summary>Raised when the first session opens.</summary>
    public event EventHandler<SupernodeConnectionEvent>? Connected;

    /// <summary>Raised when a session ends, before the connection looks for another supernode.</summary>
    public event EventHandler<SupernodeConnectionEvent>? Disconnected;

    /// <summary>Raised when a session re-opens after a loss, on whichever supernode answered.</summary>
    public event EventHandler<SupernodeConnectionEvent>? FailedOver;

    /// <summary>Another peer asked the supernode for a relayed link to this one (the link id); answer with <see cref="RelayCall"/>.</summary>
    public event EventHandler<string>? RelayOffered;

    /// <summary>A sealed item arrived in this peer's mailbox.</summary>
    public event EventHandler? MailWaiting;

    /// <summary>The supernode dialed this peer's endpoints back and said what it found.</summary>
    public event EventHandler<PeerReachability>? ReachabilityChanged;

    /// <summary>What the supernode holding the session last found when it dialed this peer back (null until it reports).</summary>
    public PeerReachability? Reachability { get; private set; }

    /// <summary>The address and port the current supernode sees this peer's session come from (after any NAT).</summary>
    public string? ObservedAddress { get; private set; }

    /// <summary>
    /// The peer host's bound address: connections to supernodes leave from it (when the port is free
    /// for that destination), so the observed address is this host's NAT mapping for the port other
    /// peers are told about. Null (private mode, loopback): ephemeral ports.
    /// </summary>
    public IPEndPoint? LocalEndPoint { get; set; }

    /// <summary>This peer's id.</summary>
    public PeerId PeerId => _identity.Id;

    /// <summary>
    /// The https:// endpoints announced at the next session open (from <see cref="SupernodeConnectionOptions.Endpoints"/>
    /// until the peer host says otherwise, e.g. once it is bound).
    /// </summary>
    public IReadOnlyList<string> AdvertisedEndpoints
    {
        get => Volatile.Read(ref _advertised);
        set => Volatile.Write(ref _advertised, value ?? []);
    }

    /// <summary>The supernode holding the session now, or null between sessions.</summary>
    public string? CurrentSupernode => _session.Task.IsCompletedSuccessfully ? _session.Task.Result.Url : null;

    /// <summary>The last reason a supernode did not open or keep a session, for status displays.</summary>
    public string? LastFailure { get; private set; }

    /// <summary>Whether a session is open now.</summary>
    public bool InSession => _session.Task.IsCompletedSuccessfully;

    /// <summary>The supernodes this connection knows of: the seeds, then what the cluster reported.</summary>
    public IReadOnlyList<string> KnownSupernodes
    {
        get
        {
            lock (_gate)
            {
                return [.. _known];
            }
        }
    }

    /// <summary>Starts keeping a session open in the background.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
            _loop ??= Task.Run(() => RunAsync(_stopping.Token));
        }
    }

    /// <summary>Waits until a session is open; returns the supernode URL holding it.</summary>
    public async Task<string> WaitForSessionAsync(CancellationToken cancellationToken = default)
    {
        Task<ActiveSession> pending;
        lock (_gate)
        {
            pending = _session.Task;
        }

        return (await pending.WaitAsync(cancellationToken)).Url;
    }

    /// <summary>
    /// Calls the supernode holding the session, with the session token attached. When that supernode
    /// is unavailable the call waits for the session to re-open elsewhere and tries again (three tries).
    /// </summary>
    public async Task<T> CallAsync<T>(Func<Protocol.Api.SupernodeClients, CallOptions, Task<T>> call, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(call);
        for (var attempt = 1; ; attempt++)
        {
            Task<ActiveSession> pending;
            lock (_gate)
            {
                pending = _session.Task;
            }

            var session = await pending.WaitAsync(cancellationToken);
            var headers = new Metadata { { SessionHeader, session.Token } };
            try
            {
                return await call(new Protocol.Api.SupernodeClients(session.Channel), new CallOptions(headers, cancellationToken: cancellationToken));
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && attempt < 3)
            {
                session.End("the supernode became unavailable");
            }
        }
    }

    /// <summary>
    /// Publishes a listing this peer signed, through the supernode holding the session; when the
    /// network asks proof of work of this identity, the stamp is minted (or read from the home) and
    /// the write made once more with it.
    /// </summary>
    public Task<PublishListingResponse> PublishListingAsync(SignedEnvelope envelope, CancellationToken cancellationToken = default) =>
        _workStamps.WriteAsync(
            stamp => CallAsync(
                (c, o) =>
                {
                    foreach (var entry in stamp)
                    {
                        o.Headers!.Add(entry);
                    }

                    return c.Listings.PublishListingAsync(envelope, o).ResponseAsync;
                },
                cancellationToken),
            cancellationToken);

    /// <summary>
    /// Opens a relay call on the supernode holding the session, with the session token attached (a
    /// supernode relays only for peers with a session on it). Used both to dial and to answer an offer.
    /// </summary>
    /// <param name="supernodeUrl">The URL of the supernode the call goes to (its host serves the relay port).</param>
    /// <param name="cancellationToken">Ends the call.</param>
    public AsyncDuplexStreamingCall<RelayFrame, RelayFrame> RelayCall(out string supernodeUrl, CancellationToken cancellationToken)
    {
        Task<ActiveSession> pending;
        lock (_gate)
        {
            pending = _session.Task;
        }

        if (!pending.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("no session is open to answer the relay offer on");
        }

        var session = pending.Result;
        supernodeUrl = session.Url;
        return new Protocol.Api.SupernodeClients(session.Channel).Relay.Relay(new Metadata { { SessionHeader, session.Token } }, cancellationToken: cancellationToken);
    }

    /// <summary>A channel to the supernode at <paramref name="url"/> (shared, kept for the connection's life).</summary>
    public GrpcChannel ChannelFor(string url) => Channel(Normalize(url));

    /// <summary>Looks a peer up through any live supernode (no session needed).</summary>
    public Task<PeerInfo> LookupPeerAsync(PeerId peer, CancellationToken cancellationToken = default) =>
        SupernodeCaller.FirstAnsweringAsync(
            Candidates(),
            Channel,
            async (client, options) => SupernodeAnswers.CheckPeer(peer, await client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = peer.ToString() }, options), _time.GetUtcNow()),
            _options.ConnectTimeout,
            cancellationToken,
            OnForged);

    /// <summary>A listing as its seller signed it, through any live supernode; an answer that does not verify is counted and the next supernode asked.</summary>
    public Task<ListingRecord> GetListingAsync(string listingId, CancellationToken cancellationToken = default) =>
        SupernodeCaller.FirstAnsweringAsync(
            Candidates(),
            Channel,
            async (client, options) => SupernodeAnswers.CheckListing(await client.Listings.GetListingAsync(new GetListingRequest { ListingId = listingId }, options), _time.GetUtcNow()),
            _options.ConnectTimeout,
            cancellationToken,
            OnForged);

    /// <summary>Answers from supernodes that did not verify (forged keys, profiles, listings), since start.</summary>
    public int ForgedAnswers => _forgedAnswers;

    /// <summary>A supernode sent an answer that does not verify; it was dropped and the next supernode asked.</summary>
    public event EventHandler<ForgedAnswerException>? ForgedAnswerReceived;

    /// <summary>Records an answer from the session's supernode that did not verify (counted, logged, raised).</summary>
    public void ReportForged(ForgedAnswerException forged) => OnForged(forged);

    private void OnForged(ForgedAnswerException forged)
    {
        Interlocked.Increment(ref _forgedAnswers);
        LogForged(_logger, forged.SupernodeUrl ?? "?", forged.Message);
        ForgedAnswerReceived?.Invoke(this, forged);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Task? loop;
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            _stopping.Cancel();
            loop = _loop;
        }

        if (loop is not null)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var channel in _channels.Values.Concat(_retired))
        {
            channel.Dispose();
        }

        _stopping.Dispose();
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var hadSession = false;
        while (!stopping.IsCancellationRequested)
        {
            ActiveSession session;
            try
            {
                session = await _reconnect.ExecuteAsync(ConnectAnyAsync, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }

            var previous = _lastUrl;
            _lastUrl = session.Url;
            CloseOtherChannels(session.Url);
            lock (_gate)
            {
                _session.TrySetResult(session);
            }

            var opened = new SupernodeConnectionEvent(session.Url, hadSession ? previous : null, null);
            if (hadSession)
            {
                LogFailedOver(_logger, previous, session.Url);
                FailedOver?.Invoke(this, opened);
            }
            else
            {
                LogConnected(_logger, session.Url);
                Connected?.Invoke(this, opened);
            }

            hadSession = true;
            using var refreshing = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            var refresher = RefreshWhileInSessionAsync(session.Channel, refreshing.Token);
            var reason = await session.Completion;
            await refreshing.CancelAsync();
            await refresher.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            lock (_gate)
            {
                _session = NewSessionSource();
            }

            LastFailure = $"{session.Url}: {reason}";
            LogDisconnected(_logger, session.Url, reason);
            Disconnected?.Invoke(this, new SupernodeConnectionEvent(session.Url, null, reason));
            await session.DisposeAsync();
            if (session.Draining is { Count: > 0 } alternatives)
            {
                Learn(alternatives);
            }
        }
    }

    private async ValueTask<ActiveSession> ConnectAnyAsync(CancellationToken stopping)
    {
        var failures = new List<string>();
        foreach (var url in Candidates())
        {
            try
            {
                return await OpenSessionAsync(url, stopping);
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                // Whatever one supernode did wrong, the answer is the same: try the next one.
                LogAttemptFailed(_logger, url, ex.Message);
                failures.Add($"{url}: {ex.GetType().Name}: {ex.Message}");
                LastFailure = failures[^1];
            }
        }

        throw new NoSupernodeAnsweredException(string.Join("; ", failures));
    }

    /// <summary>
    /// Closes the connections to every supernode but the session's. After a supernode dies its peers
    /// try the survivors one after another (each attempt reusing its channel); once in session, a
    /// connection left open at each supernode tried would be held on both sides for the life of the
    /// process (a socket here, a connection's buffers there). A later call elsewhere connects anew.
    /// </summary>
    private void CloseOtherChannels(string sessionUrl)
    {
        lock (_gate)
        {
            RetireHoldingGate(url => url != sessionUrl);
            DisposeRetiredHoldingGate();
        }
    }

    /// <summary>Moves the channels whose URL is <paramref name="gone"/> to the retired ones (disposed later: a call may still be using one).</summary>
    private void RetireHoldingGate(Func<string, bool> gone)
    {
        foreach (var url in _channels.Keys.Where(gone).ToList())
        {
            _retired.Add(_channels[url]);
            _channels.Remove(url);
        }
    }

    private void DisposeRetiredHoldingGate()
    {
        foreach (var channel in _retired)
        {
            channel.Dispose();
        }

        _retired.Clear();
    }

    private async Task<ActiveSession> OpenSessionAsync(string url, CancellationToken stopping)
    {
        var channel = Channel(url);
        var client = new Protocol.Api.SupernodeClients(channel);
        var callEnded = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var call = client.Directory.Session(cancellationToken: callEnded.Token);
        try
        {
            using var handshake = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            handshake.CancelAfter(_options.ConnectTimeout);
            var challenge = await ReadAsync(call, handshake.Token);
            if (challenge.KindCase != SessionServerMessage.KindOneofCase.Challenge)
            {
                throw new InvalidOperationException($"supernode sent {challenge.KindCase} instead of a challenge");
            }

            // Minted outside the handshake's timeout: the first time it may take a second or more.
            var work = await WorkStampAsync(challenge.Challenge.WorkBits, stopping);
            var now = _time.GetUtcNow();
            // Signs the URL this client dialed, not whatever the challenge claims: a server relaying another
            // supernode's challenge cannot use the answer there.
            var proofBody = new SessionProof { Challenge = challenge.Challenge.Nonce, SupernodeId = challenge.Challenge.SupernodeId, DialedUrl = url };
            if (_tlsKeys.TryGetValue(url, out var tlsKey))
            {
                // The key this client verified in the TLS handshake of this channel.
                proofBody.TlsKeySha256 = ByteString.CopyFrom(tlsKey);
            }
            proofBody.Endpoints.AddRange(AdvertisedEndpoints.Select(e => new PeerEndpoint { Url = e }));
            var proof = SignedEnvelopes.Sign(_identity, EnvelopeKinds.SessionProof, (ulong)now.ToUnixTimeMilliseconds(), proofBody, now, now + ProofLifetime);
            await call.RequestStream.WriteAsync(new SessionClientMessage { Hello = new SessionHello { Proof = proof, Profile = _sendProfile ? _profile : null, Work = work } }, handshake.Token);
            SessionServerMessage welcome;
            try
            {
                welcome = await ReadAsync(call, handshake.Token);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.AlreadyExists && _sendProfile)
            {
                // The network holds a newer profile of this identity (signed on another device, or by a later
                // run): keep that one and stop offering ours, rather than being refused at every attempt.
                _sendProfile = false;
                throw;
            }

            if (welcome.KindCase != SessionServerMessage.KindOneofCase.Welcome)
            {
                throw new InvalidOperationException($"supernode sent {welcome.KindCase} instead of a welcome");
            }

            // The welcome names the cluster's supernodes; a supernode that does not is asked.
            if (welcome.Welcome.Supernodes.Count > 0)
            {
                Adopt([.. welcome.Welcome.Supernodes.Select(s => s.Url)]);
            }
            else
            {
                await RefreshSupernodesAsync(client, stopping);
            }

            ObservedAddress = string.IsNullOrEmpty(welcome.Welcome.ObservedAddress) ? null : welcome.Welcome.ObservedAddress;
            return new ActiveSession(url, channel, call, callEnded, welcome.Welcome, _time, OnEvent);
        }
        catch
        {
            await callEnded.CancelAsync();
            call.Dispose();
            callEnded.Dispose();
            throw;
        }
    }

    /// <summary>The identity's work stamp when the network asks one (<paramref name="bits"/> &gt; 0), else nothing.</summary>
    private async Task<ByteString> WorkStampAsync(uint bits, CancellationToken stopping) =>
        bits == 0 ? ByteString.Empty : ByteString.CopyFrom(await _workStamps.GetAsync((int)Math.Min(bits, int.MaxValue), stopping));

    private async Task RefreshSupernodesAsync(Protocol.Api.SupernodeClients client, CancellationToken stopping)
    {
        try
        {
            var listed = await client.Directory.ListSupernodesAsync(new ListSupernodesRequest(), deadline: _time.GetUtcNow().UtcDateTime + ListTimeout, cancellationToken: stopping);
            Adopt([.. listed.Supernodes.Select(s => s.Url)]);
        }
        catch (RpcException ex) when (ex.StatusCode is not StatusCode.Unavailable)
        {
            // The supernode answers but its registry does not right now: keep the list we have and go on.
            LogListFailed(_logger, ex.Status.Detail);
        }
    }

    private async Task RefreshWhileInSessionAsync(GrpcChannel channel, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.SupernodeListRefresh, _time);
        var client = new Protocol.Api.SupernodeClients(channel);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            try
            {
                await RefreshSupernodesAsync(client, cancellationToken);
            }
            catch (RpcException ex)
            {
                // The session's own watchdog notices a dead supernode; the list can wait.
                LogListFailed(_logger, ex.Status.Detail);
            }
        }
    }

    private void Learn(IReadOnlyCollection<string> urls)
    {
        lock (_gate)
        {
            foreach (var url in urls.Select(Normalize))
            {
                if (!_known.Contains(url))
                {
                    _known.Add(url);
                }
            }
        }
    }

    /// <summary>
    /// Takes the cluster's latest membership as the known list: the seeds, the supernode in use and the
    /// members (at most <see cref="MaxKnownSupernodes"/>, http(s) URLs only — a hostile supernode cannot
    /// flood it). Supernodes no longer listed are forgotten, so failover never walks dead pod addresses
    /// after a rollout; their channels are disposed at the next refresh (a call may still be using one).
    /// </summary>
    private void Adopt(IReadOnlyCollection<string> members)
    {
        lock (_gate)
        {
            var current = _session.Task.IsCompletedSuccessfully ? _session.Task.Result.Url : null;
            var valid = members.Where(u => u.Length <= 256 && Protocol.Api.SupernodeUrls.Canonical(u) is not null).Select(Normalize).Take(MaxKnownSupernodes);
            var next = _seeds.Concat(current is null ? [] : [current]).Concat(valid).Distinct(StringComparer.Ordinal).ToList();
            DisposeRetiredHoldingGate();
            RetireHoldingGate(url => !next.Contains(url));

            _known.Clear();
            _known.AddRange(next);
        }
    }

    /// <summary>Where to try next (see <see cref="FailoverOrder"/>).</summary>
    private List<string> Candidates()
    {
        lock (_gate)
        {
            return FailoverOrder.Of(_known, _lastUrl, Random.Shared);
        }
    }

    /// <summary>Checks an https supernode's certificate and remembers its key for the session proof.</summary>
    private bool ValidateServer(string url, System.Security.Cryptography.X509Certificates.X509Certificate? presented, System.Net.Security.SslPolicyErrors errors)
    {
        if (presented is null)
        {
            return false;
        }

        var certificate = presented as System.Security.Cryptography.X509Certificates.X509Certificate2 ?? System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        var trusted = _options.ServerCertificateValidation?.Invoke(certificate, errors) ?? errors == System.Net.Security.SslPolicyErrors.None;
        if (trusted)
        {
            _tlsKeys[url] = TlsKeys.Sha256(certificate);
        }

        return trusted;
    }

    private GrpcChannel Channel(string url)
    {
        lock (_gate)
        {
            if (!_channels.TryGetValue(url, out var channel))
            {
                channel = _options.SharedHandler is { } shared
                    // Through an HttpClient: given a handler, the channel would set up connections of its own for it.
                    ? GrpcChannel.ForAddress(url, new GrpcChannelOptions { HttpClient = new HttpClient(shared, disposeHandler: false), DisposeHttpClient = true })
                    : OwnChannel(url);
                _channels[url] = channel;
            }

            return channel;
        }
    }

    private GrpcChannel OwnChannel(string url) => GrpcChannel.ForAddress(url, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            ConnectTimeout = _options.ConnectTimeout,
            // Pings find a supernode that hangs without closing its sockets.
            KeepAlivePingDelay = TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            InitialHttp2StreamWindowSize = PeerProtocol.StreamWindowBytes,
            ConnectCallback = (context, ct) => ConnectAsync(context.DnsEndPoint, ct),
            SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, errors) => ValidateServer(url, presented, errors) },
        },
        DisposeHttpClient = true,
    });

    /// <summary>A connection to a supernode: from the peer host's port when possible, else from any port.</summary>
    private async ValueTask<Stream> ConnectAsync(DnsEndPoint target, CancellationToken cancellationToken)
    {
        if (LocalEndPoint is { } local)
        {
            var addresses = IPAddress.TryParse(target.Host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(target.Host, cancellationToken);
            foreach (var address in addresses.Where(a => a.AddressFamily == local.AddressFamily || local.Address.Equals(IPAddress.IPv6Any)).Take(2))
            {
                if (await PortReuse.TryConnectFromAsync(local, new IPEndPoint(address, target.Port), cancellationToken) is { } bound)
                {
                    return new NetworkStream(bound, ownsSocket: true);
                }
            }
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(target, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void OnEvent(SupernodeEvent e)
    {
        switch (e.KindCase)
        {
            case SupernodeEvent.KindOneofCase.RelayOffer:
                RelayOffered?.Invoke(this, e.RelayOffer.LinkId);
                break;
            case SupernodeEvent.KindOneofCase.MailWaiting:
                MailWaiting?.Invoke(this, EventArgs.Empty);
                break;
            case SupernodeEvent.KindOneofCase.Reachability:
                var report = new PeerReachability(
                    CurrentSupernode ?? string.Empty,
                    e.Reachability.ObservedAddress,
                    [.. e.Reachability.Checks.Take(16).Select(c => new EndpointReachability(c.Url, c.Reachable, c.Reason.Length > 200 ? c.Reason[..200] : c.Reason))],
                    _time.GetUtcNow());
                Reachability = report;
                ReachabilityChanged?.Invoke(this, report);
                break;
        }
    }

    /// <summary>
    /// Announces new endpoints (the network changed): kept for the next session, and sent on the
    /// current one, whose supernode dials them back again.
    /// </summary>
    public async Task AnnounceEndpointsAsync(IReadOnlyList<string> endpoints, CancellationToken cancellationToken)
    {
        AdvertisedEndpoints = endpoints;
        if (_session.Task.IsCompletedSuccessfully)
        {
            var update = new EndpointsUpdate();
            update.Endpoints.AddRange(endpoints.Select(e => new PeerEndpoint { Url = e }));
            await _session.Task.Result.SendAsync(new SessionClientMessage { Endpoints = update }, cancellationToken);
        }
    }

    private static async Task<SessionServerMessage> ReadAsync(AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> call, CancellationToken cancellationToken) =>
        await call.ResponseStream.MoveNext(cancellationToken)
            ? call.ResponseStream.Current
            : throw new InvalidOperationException("the supernode closed the session stream");

    private static string Normalize(string url) => url.Trim().TrimEnd('/');

    private static TaskCompletionSource<ActiveSession> NewSessionSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    [LoggerMessage(Level = LogLevel.Information, Message = "In session with {Url}")]
    private static partial void LogConnected(ILogger logger, string url);

    [LoggerMessage(Level = LogLevel.Information, Message = "Session moved from {Previous} to {Url}")]
    private static partial void LogFailedOver(ILogger logger, string? previous, string url);

    [LoggerMessage(Level = LogLevel.Information, Message = "Session with {Url} ended: {Reason}")]
    private static partial void LogDisconnected(ILogger logger, string url, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Supernode {Url} did not open a session: {Reason}")]
    private static partial void LogAttemptFailed(ILogger logger, string url, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Supernode {Url} sent an answer that does not verify, dropped: {Reason}")]
    private static partial void LogForged(ILogger logger, string url, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not refresh the supernode list: {Reason}")]
    private static partial void LogListFailed(ILogger logger, string reason);

    /// <summary>One open session: sends heartbeats, watches acks and events, completes with the reason it ended.</summary>
    private sealed class ActiveSession : IAsyncDisposable
    {
        private readonly AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> _call;
        private readonly CancellationTokenSource _ended;
        private readonly TaskCompletionSource<string> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TimeSpan _interval;
        private readonly TimeSpan _timeout;
        private readonly TimeProvider _time;
        private readonly Task _heartbeats;
        private readonly Task _reader;
        private readonly Action<SupernodeEvent> _onEvent;
        private readonly SemaphoreSlim _writing = new(1, 1);
        private long _lastAckTicks;

        public ActiveSession(string url, GrpcChannel channel, AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> call, CancellationTokenSource ended, SessionWelcome welcome, TimeProvider time, Action<SupernodeEvent> onEvent)
        {
            _onEvent = onEvent;
            Url = url;
            Channel = channel;
            Token = welcome.SessionToken;
            _call = call;
            _ended = ended;
            _time = time;
            _interval = TimeSpan.FromMilliseconds(Math.Max(100, welcome.HeartbeatIntervalMs));
            _timeout = TimeSpan.FromMilliseconds(Math.Max(welcome.SessionTimeoutMs, welcome.HeartbeatIntervalMs * 2));
            _lastAckTicks = Stopwatch.GetTimestamp();
            _heartbeats = Task.Run(SendHeartbeatsAsync);
            _reader = Task.Run(ReadEventsAsync);
        }

        public string Url { get; }

        public GrpcChannel Channel { get; }

        public string Token { get; }

        public IReadOnlyList<string>? Draining { get; private set; }

        public Task<string> Completion => _completion.Task;

        public void End(string reason)
        {
            _completion.TrySetResult(reason);
            _ended.Cancel();
        }

        public async ValueTask DisposeAsync()
        {
            End("closed");
            await Task.WhenAll(_heartbeats, _reader).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _call.Dispose();
            _ended.Dispose();
            _writing.Dispose();
        }

        /// <summary>Writes one message on the session stream (one writer at a time, as gRPC requires).</summary>
        public async Task SendAsync(SessionClientMessage message, CancellationToken cancellationToken)
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _ended.Token);
            await _writing.WaitAsync(both.Token);
            try
            {
                await _call.RequestStream.WriteAsync(message, both.Token);
            }
            finally
            {
                _writing.Release();
            }
        }

        private async Task SendHeartbeatsAsync()
        {
            ulong sequence = 0;
            try
            {
                using var timer = new PeriodicTimer(_interval, _time);
                while (await timer.WaitForNextTickAsync(_ended.Token))
                {
                    if (Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastAckTicks)) > _timeout)
                    {
                        End($"no heartbeat answer for {_timeout.TotalSeconds:0.#} s");
                        return;
                    }

                    await SendAsync(new SessionClientMessage { Heartbeat = new Heartbeat { Sequence = ++sequence } }, _ended.Token);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or RpcException or InvalidOperationException or IOException)
            {
                End(ex is OperationCanceledException ? "closed" : $"heartbeat failed: {ex.Message}");
            }
        }

        private async Task ReadEventsAsync()
        {
            try
            {
                while (await _call.ResponseStream.MoveNext(_ended.Token))
                {
                    var message = _call.ResponseStream.Current;
                    switch (message.KindCase)
                    {
                        case SessionServerMessage.KindOneofCase.HeartbeatAck:
                            Interlocked.Exchange(ref _lastAckTicks, Stopwatch.GetTimestamp());
                            break;
                        case SessionServerMessage.KindOneofCase.Event when message.Event.KindCase == SupernodeEvent.KindOneofCase.Draining:
                            Draining = [.. message.Event.Draining.Alternatives];
                            End("the supernode is shutting down");
                            return;
                        case SessionServerMessage.KindOneofCase.Event when message.Event.KindCase == SupernodeEvent.KindOneofCase.Superseded:
                            End("another session of this peer took over");
                            return;
                        case SessionServerMessage.KindOneofCase.Event:
                            _onEvent(message.Event);
                            break;
                    }
                }

                End("the supernode closed the session");
            }
            catch (RpcException ex)
            {
                End($"{ex.StatusCode}: {ex.Status.Detail}");
            }
            catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or IOException)
            {
                End(ex is OperationCanceledException ? "closed" : ex.Message);
            }
        }
    }
}

/// <summary>One endpoint as the supernode's dial-back found it.</summary>
/// <param name="Url">The endpoint (or the observed address) dialed.</param>
/// <param name="Reachable">This peer's key answered there.</param>
/// <param name="Reason">Why not, as the supernode said it.</param>
public sealed record EndpointReachability(string Url, bool Reachable, string Reason);

/// <summary>What a supernode found when it dialed this peer back.</summary>
/// <param name="Supernode">The supernode that dialed.</param>
/// <param name="ObservedAddress">Where it sees this peer's session come from.</param>
/// <param name="Checks">Each endpoint dialed.</param>
/// <param name="At">When the report arrived.</param>
public sealed record PeerReachability(string Supernode, string ObservedAddress, IReadOnlyList<EndpointReachability> Checks, DateTimeOffset At)
{
    /// <summary>Whether any endpoint answered: other peers can dial this one directly.</summary>
    public bool Reachable => Checks.Any(c => c.Reachable);
}

/// <summary>No known supernode opened a session in one round of attempts.</summary>
public sealed class NoSupernodeAnsweredException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NoSupernodeAnsweredException()
    {
    }

    /// <summary>Creates the exception with what each supernode answered.</summary>
    public NoSupernodeAnsweredException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NoSupernodeAnsweredException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
