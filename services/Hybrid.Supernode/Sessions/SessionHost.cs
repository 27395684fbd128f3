using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Index.Directory;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Api;
using Hybrid.Supernode.Cluster;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Sessions;

/// <summary>
/// Runs one peer session: challenge, proof of key, then heartbeats that keep the peer's presence
/// lease alive. One writer task owns the response stream; everything else queues into the outbox.
/// </summary>
public sealed partial class SessionHost(
    IGrainFactory grains,
    SessionHub hub,
    SupernodeRegistration registration,
    SupernodeOptions options,
    RequestLimits limits,
    IdentityAdmission admission,
    SupernodeMetrics metrics,
    DialBack dialBack,
    ILocalSiloDetails silo,
    PresenceRenewal renewal,
    TimeProvider time,
    ILogger<SessionHost> logger) : IDisposable
{
    public const int MaxEndpoints = 8;
    public const int MaxEndpointLength = 256;
    public const int MaxDisplayNameLength = 64;
    public const int MaxAboutLength = 1024;
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(2);

    // Handshakes past the hello (verification, the peer's grain, the welcome) at once. A herd of
    // peers reconnecting after a supernode died would otherwise each wait past its client's timeout
    // and try again, so the work done for them would be thrown away; refused at once, a peer tries
    // another supernode or backs off. Taken after the hello, so idle streams cannot hold places.
    private readonly System.Threading.RateLimiting.ConcurrencyLimiter _handshakes = new(new System.Threading.RateLimiting.ConcurrencyLimiterOptions
    {
        PermitLimit = options.MaxHandshakesInProgress,
        QueueLimit = 0,
    });

    public void Dispose() => _handshakes.Dispose();

    /// <summary>How long a session open waits for the peer's directory grain to be reachable again after a supernode died: failure detection, and a second more.</summary>
    private TimeSpan GrainMoveWait => TimeSpan.FromSeconds(Math.Max(3, options.FailureDetection.TotalSeconds + 1));

    /// <summary>
    /// Opens the session on the peer's directory grain. Right after a supernode dies, a grain that
    /// lived there cannot be reached until the cluster declares that supernode dead (a second or two)
    /// and the grain starts elsewhere: calls to it are rejected meanwhile. This supernode learns of the
    /// declaration as soon as anyone, so it asks again every quarter second or sooner, for at most
    /// <see cref="GrainMoveWait"/>, instead of sending the peer away: a peer sent away backs off (a
    /// quarter second, then a half, a second, two), and a herd of them came back in a block 3 – 4 s
    /// after the kill. While it waits, the handshake gives up its place (waiting takes no CPU).
    /// </summary>
    private async Task<IndexResult> OpenOnceReachableAsync(IPeerGrain grain, SessionClaim claim, System.Threading.RateLimiting.RateLimitLease handshake, CancellationToken aborted)
    {
        var started = time.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                return await grain.OpenSession(claim);
            }
            catch (OrleansMessageRejectionException) when (time.GetElapsedTime(started) + pause < GrainMoveWait)
            {
                handshake.Dispose();
                metrics.SessionOpenWaits.Inc();
                await Task.Delay(pause, time, aborted);
                pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromMilliseconds(250).Ticks));
            }
        }
    }

    public async Task RunAsync(IAsyncStreamReader<SessionClientMessage> requests, IServerStreamWriter<SessionServerMessage> responses, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentNullException.ThrowIfNull(responses);
        ArgumentNullException.ThrowIfNull(context);
        var aborted = context.CancellationToken;
        var nonce = RandomNumberGenerator.GetBytes(32);
        await responses.WriteAsync(new SessionServerMessage
        {
            Challenge = new SessionChallenge
            {
                Nonce = ByteString.CopyFrom(nonce),
                SupernodeId = registration.SupernodeId,
                ServerTimeMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
                WorkBits = (uint)admission.WorkBits,
                SupernodeUrl = registration.AdvertisedUrl,
            },
        }, aborted);

        var hello = await ReadHelloAsync(requests, aborted);
        using var handshake = _handshakes.AttemptAcquire();
        if (!handshake.IsAcquired)
        {
            metrics.SessionsRefused.WithLabels("busy").Inc();
            throw new RpcException(new Status(StatusCode.Unavailable, "this supernode is opening as many sessions as it can at once; try another supernode, or this one again in a moment"));
        }

        var (peer, publicKey, endpoints, profile) = Authenticate(hello, nonce, LocalTlsKey(context));
        limits.SessionOpen(peer.ToString());

        var grain = grains.GetGrain<IPeerGrain>(peer.ToString());
        var sessionId = Guid.NewGuid();
        var claim = new SessionClaim(sessionId, publicKey, profile, endpoints, registration.AdvertisedUrl, options.PresenceLease, MayCreate: admission.IsKnown(peer), Holder: silo.SiloAddress);
        var opened = await OpenOnceReachableAsync(grain, claim, handshake, aborted);
        if (opened.Outcome == IndexOutcome.NewIdentity)
        {
            // New to the network: it pays with its work stamp and a place in the new-identity budgets.
            admission.ChargeNew(publicKey, hello.Work.Span, ClientAddresses.Key(context));
            opened = await OpenOnceReachableAsync(grain, claim with { MayCreate = true }, handshake, aborted);
        }

        if (!opened.Succeeded)
        {
            metrics.SessionsRefused.WithLabels(opened.Outcome.ToString()).Inc();
            throw new RpcException(new Status(IndexStatus.For(opened.Outcome), opened.Message));
        }

        admission.Remember(peer);

        var session = new OpenSession(peer, sessionId, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), aborted)
        {
            Observed = Observed(context),
        };
        renewal.ScheduleRenewal(session);
        var welcome = new SessionWelcome
        {
            PeerId = peer.ToString(),
            SessionToken = session.Token,
            HeartbeatIntervalMs = (int)options.HeartbeatInterval.TotalMilliseconds,
            SessionTimeoutMs = (int)options.SessionTimeout.TotalMilliseconds,
            SupernodeUrl = registration.AdvertisedUrl,
            ObservedAddress = session.Observed?.ToString() ?? string.Empty,
        };
        welcome.Supernodes.AddRange(await SupernodeListAsync());
        hub.Add(session);
        // The handshake is done: its place goes to the next one (the session itself holds none).
        handshake.Dispose();
        LogOpened(logger, peer, registration.AdvertisedUrl);
        var writer = PumpAsync(session, responses);
        var ended = "error";
        try
        {
            session.TrySend(new SessionServerMessage { Welcome = welcome });
            _ = CheckReachabilityAsync(session, grain, endpoints);
            ended = await ReadLoopAsync(requests, session, grain);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.DeadlineExceeded)
        {
            ended = "timeout";
            throw;
        }
        finally
        {
            metrics.SessionsEnded.WithLabels(ended).Inc();
            hub.Remove(session);
            session.CompleteOutbox();
            // Let a last notice (superseded, draining) reach the peer, but never wait on a stuck client.
            await writer.WaitAsync(FlushTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await session.Ending.CancelAsync();
            await writer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await CloseQuietlyAsync(grain, sessionId, peer);
            session.Ending.Dispose();
        }
    }

    /// <summary>The cluster's live supernodes for the welcome; empty when the registry cannot say now (the client asks later).</summary>
    private async Task<IEnumerable<SupernodeInfo>> SupernodeListAsync()
    {
        try
        {
            return DirectoryService.Describe(await registration.LiveSupernodesAsync());
        }
        catch (Exception ex) when (ex is OrleansException or TimeoutException)
        {
            return [];
        }
    }

    private async Task<SessionHello> ReadHelloAsync(IAsyncStreamReader<SessionClientMessage> requests, CancellationToken aborted)
    {
        SessionClientMessage? first;
        try
        {
            first = await FirstMessage.ReadAsync(requests, options.HelloTimeout, "hello", aborted);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.DeadlineExceeded)
        {
            metrics.SessionsRefused.WithLabels("hello_timeout").Inc();
            throw;
        }

        return first is null
            ? throw new RpcException(new Status(StatusCode.Cancelled, "the stream closed before the hello"))
            : first.Hello ?? throw Refuse("not_hello", StatusCode.InvalidArgument, "the first session message must be a hello answering the challenge");
    }

    /// <summary>The TLS key this connection presented, when this supernode terminates TLS itself.</summary>
    private static byte[]? LocalTlsKey(ServerCallContext context) =>
        context.GetHttpContext().Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.ISslStreamFeature>()?.SslStream.LocalCertificate is { } local
            ? TlsKeys.Sha256(local as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(local.GetRawCertData()))
            : null;

    private (PeerId Peer, byte[] PublicKey, ImmutableArray<string> Endpoints, SignedProfile? Profile) Authenticate(SessionHello hello, byte[] nonce, byte[]? tlsKey)
    {
        var now = time.GetUtcNow();
        VerifiedEnvelope proof;
        try
        {
            proof = SignedEnvelopes.Verify(hello.Proof, EnvelopeKinds.SessionProof, now);
        }
        catch (EnvelopeRejectedException ex)
        {
            throw Refuse("bad_proof", StatusCode.Unauthenticated, $"session proof refused: {ex.Message}");
        }

        var body = proof.Body(SessionProof.Parser);
        if (!CryptographicOperations.FixedTimeEquals(body.Challenge.Span, nonce))
        {
            throw Refuse("stale_challenge", StatusCode.Unauthenticated, "session proof answers another challenge (replayed or stale): sign the challenge this stream sent");
        }

        if (!string.Equals(body.SupernodeId, registration.SupernodeId, StringComparison.Ordinal))
        {
            throw Refuse("wrong_supernode", StatusCode.Unauthenticated, "session proof was made for another supernode");
        }

        // The proof names the URL its peer dialed: a server that relays this supernode's challenge to
        // a peer who dialed it cannot pass the answer off here.
        if (!registration.IsOwnUrl(body.DialedUrl))
        {
            throw Refuse("wrong_url", StatusCode.Unauthenticated, $"session proof was made for a connection to '{(body.DialedUrl.Length > 80 ? body.DialedUrl[..80] + "…" : body.DialedUrl)}', which is not this supernode ({registration.AdvertisedUrl}); connect to the supernode you mean to use directly");
        }

        // The proof names the TLS key its peer verified: a server that holds another key (a
        // man in the middle with a certificate of its own) cannot pass the answer off here.
        if (!body.TlsKeySha256.IsEmpty)
        {
            var expected = tlsKey is not null ? [tlsKey] : options.PublicTlsKeyList();
            if (expected.Count > 0 && !expected.Any(k => CryptographicOperations.FixedTimeEquals(k, body.TlsKeySha256.Span)))
            {
                throw Refuse("wrong_tls_key", StatusCode.Unauthenticated, "session proof names a TLS key this supernode does not hold: the connection was intercepted, or the supernode changed its key; connect again");
            }
        }

        var endpoints = ValidateEndpoints(body.Endpoints);
        SignedProfile? profile = null;
        if (hello.Profile is { } envelope)
        {
            var verified = SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, now, proof.Signer);
            ValidateProfile(verified.Body(PeerProfile.Parser));
            profile = new SignedProfile(envelope.ToByteArray(), verified.Envelope.Payload.ToByteArray(), verified.Version);
        }

        return (proof.Signer, proof.Envelope.SignerPublicKey.ToByteArray(), endpoints, profile);
    }

    /// <summary>Reads heartbeats and announcements until the session ends; returns how it ended (a <c>hybrid_sessions_ended_total</c> label).</summary>
    private async Task<string> ReadLoopAsync(IAsyncStreamReader<SessionClientMessage> requests, OpenSession session, IPeerGrain grain)
    {
        using var watchdog = CancellationTokenSource.CreateLinkedTokenSource(session.Ending.Token);
        while (true)
        {
            watchdog.CancelAfter(options.SessionTimeout);
            try
            {
                if (!await requests.MoveNext(watchdog.Token))
                {
                    return "closed";
                }
            }
            catch (OperationCanceledException) when (session.Ending.IsCancellationRequested)
            {
                // The client left, or the supernode ended the session (draining, superseded) and the writer has delivered the notice.
                return session.CallAborted ? "dropped" : session.EndedBySupernode;
            }
            catch (IOException)
            {
                // The client reset its stream or its connection went away: how most sessions end.
                return "dropped";
            }
            catch (OperationCanceledException)
            {
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"no heartbeat for {options.SessionTimeout.TotalSeconds:0.#} s; the session is closed"));
            }

            limits.Control(session.Peer);
            var message = requests.Current;
            switch (message.KindCase)
            {
                case SessionClientMessage.KindOneofCase.Heartbeat:
                    // A heartbeat keeps the session; the directory's presence is renewed only when due
                    // (a held session's main cost was one grain call per heartbeat).
                    if (!await renewal.RenewIfDueAsync(session))
                    {
                        // A session of this peer opened elsewhere took over.
                        return "superseded";
                    }

                    if (!session.TrySend(new SessionServerMessage { HeartbeatAck = new HeartbeatAck { Sequence = message.Heartbeat.Sequence } }))
                    {
                        // The outbox is closed (draining, superseded) or full (the peer does not read what it is sent).
                        return session.Closing ? session.EndedBySupernode : "stuck";
                    }

                    break;
                case SessionClientMessage.KindOneofCase.Endpoints:
                    var endpoints = ValidateEndpoints(message.Endpoints.Endpoints);
                    var updated = await grain.UpdateEndpoints(session.SessionId, endpoints);
                    if (!updated.Succeeded)
                    {
                        throw new RpcException(new Status(IndexStatus.For(updated.Outcome), updated.Message));
                    }

                    _ = CheckReachabilityAsync(session, grain, endpoints);
                    break;
                case SessionClientMessage.KindOneofCase.Hello:
                    throw new RpcException(new Status(StatusCode.FailedPrecondition, "the session is already authenticated; send heartbeats"));
                default:
                    throw new RpcException(new Status(StatusCode.InvalidArgument, "empty session message"));
            }
        }
    }

    /// <summary>The address and port this session's connection comes from, as this supernode sees it.</summary>
    private static System.Net.IPEndPoint? Observed(ServerCallContext context)
    {
        var connection = context.GetHttpContext().Connection;
        return connection.RemoteIpAddress is { } address
            ? new System.Net.IPEndPoint(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, connection.RemotePort)
            : null;
    }

    /// <summary>
    /// Dials back what the peer announced (and the address its session comes from), then records the
    /// verified endpoints in its grain and tells the peer what was found. Runs beside the session;
    /// a newer round (the peer announced again) wins over an older one still running. A peer that
    /// announces nothing (private mode) is never dialed and its address is never shown.
    /// </summary>
    private async Task CheckReachabilityAsync(OpenSession session, IPeerGrain grain, ImmutableArray<string> announced)
    {
        var round = session.NextReachabilityRound();
        if (announced.IsEmpty || !dialBack.TryStartRound(session.Peer))
        {
            return;
        }

        List<string> urls = [.. announced];
        if (session.Observed is { } observed && !urls.Contains($"https://{observed}"))
        {
            urls.Add($"https://{observed}");
        }

        try
        {
            var results = await dialBack.CheckAsync(session.Peer, session.Observed?.Address, urls, session.Ending.Token);
            if (!session.IsReachabilityRound(round))
            {
                return;
            }

            var verified = results.Where(r => r.Reachable).Select(r => r.Url).ToList();
            await grain.UpdateReachability(session.SessionId, verified, [.. urls.Except(verified)]);
            var report = new ReachabilityReport { ObservedAddress = session.Observed?.ToString() ?? string.Empty };
            report.Checks.AddRange(results.Select(r => new EndpointCheck { Url = r.Url, Reachable = r.Reachable, Reason = r.Reason }));
            session.TrySend(new SessionServerMessage { Event = new SupernodeEvent { Reachability = report } });
        }
        catch (Exception ex) when (ex is OperationCanceledException or OrleansException or TimeoutException)
        {
            // The session ended, or the index is unreachable now: the endpoints stay candidates.
            LogReachabilityFailed(logger, session.Peer, ex.Message);
        }
    }

    private static async Task PumpAsync(OpenSession session, IServerStreamWriter<SessionServerMessage> responses)
    {
        try
        {
            await foreach (var message in session.Outgoing.ReadAllAsync(session.Ending.Token))
            {
                await responses.WriteAsync(message, session.Ending.Token);
            }
        }
        finally
        {
            // Outbox completed (draining, superseded) or the call ended: either way the session is over.
            await session.Ending.CancelAsync();
        }
    }

    private async Task CloseQuietlyAsync(IPeerGrain grain, Guid sessionId, PeerId peer)
    {
        try
        {
            await grain.CloseSession(sessionId).WaitAsync(CloseAttemptTimeout);
            LogClosed(logger, peer);
        }
        catch (Exception ex) when (ex is OrleansException or TimeoutException or InvalidOperationException)
        {
            // Tried again beside (the call is over): the presence would otherwise show the peer online
            // until its lease ran out, which is longer than a session's timeout.
            _ = RetryCloseAsync(grain, sessionId, peer, ex.Message);
        }
    }

    private static readonly TimeSpan CloseAttemptTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Closes the presence again every few seconds until a session timeout has passed; then the lease is left to run out.</summary>
    private async Task RetryCloseAsync(IPeerGrain grain, Guid sessionId, PeerId peer, string firstFailure)
    {
        var giveUp = time.GetUtcNow() + options.SessionTimeout;
        var reason = firstFailure;
        while (time.GetUtcNow() + CloseAttemptTimeout < giveUp)
        {
            await Task.Delay(CloseAttemptTimeout, time);
            try
            {
                await grain.CloseSession(sessionId).WaitAsync(CloseAttemptTimeout);
                LogClosed(logger, peer);
                return;
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException or InvalidOperationException)
            {
                reason = ex.Message;
            }
        }

        LogCloseFailed(logger, peer, reason);
    }

    /// <summary>Checks endpoint URLs the peer announces; they are shown to anyone who looks the peer up.</summary>
    public static ImmutableArray<string> ValidateEndpoints(IReadOnlyCollection<PeerEndpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.Count > MaxEndpoints)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{endpoints.Count} endpoints announced; at most {MaxEndpoints}"));
        }

        foreach (var endpoint in endpoints)
        {
            if (endpoint.Url.Length > MaxEndpointLength || !Uri.TryCreate(endpoint.Url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"endpoint '{Truncate(endpoint.Url)}' is not an https:// URL of at most {MaxEndpointLength} characters"));
            }
        }

        return [.. endpoints.Select(e => e.Url)];
    }

    /// <summary>Checks a profile's fields.</summary>
    public static void ValidateProfile(PeerProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (string.IsNullOrWhiteSpace(profile.DisplayName) || profile.DisplayName.Length > MaxDisplayNameLength || profile.DisplayName.Any(char.IsControl))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"display name must be 1-{MaxDisplayNameLength} printable characters"));
        }

        if (profile.About.Length > MaxAboutLength)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"about text is {profile.About.Length} characters; at most {MaxAboutLength}"));
        }
    }

    private RpcException Refuse(string reason, StatusCode code, string message)
    {
        metrics.SessionsRefused.WithLabels(reason).Inc();
        return new RpcException(new Status(code, message));
    }

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "…";

    [LoggerMessage(Level = LogLevel.Debug, Message = "Session opened for {Peer} on {Supernode}")]
    private static partial void LogOpened(ILogger logger, PeerId peer, string supernode);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Reachability of {Peer} not recorded: {Reason}")]
    private static partial void LogReachabilityFailed(ILogger logger, PeerId peer, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Session closed for {Peer}")]
    private static partial void LogClosed(ILogger logger, PeerId peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Could not mark {Peer} offline ({Reason}); its presence lease will expire")]
    private static partial void LogCloseFailed(ILogger logger, PeerId peer, string reason);
}
