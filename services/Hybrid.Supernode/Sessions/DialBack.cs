using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.RateLimiting;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Network;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Sessions;

/// <summary>What one dial-back found.</summary>
/// <param name="Url">The endpoint as announced (or the observed address as an https:// URL).</param>
/// <param name="Reachable">The peer's own key answered there.</param>
/// <param name="Reason">Why not, in a sentence; empty when reachable.</param>
public sealed record EndpointResult(string Url, bool Reachable, string Reason);

/// <summary>
/// Checks whether a peer can be reached at the endpoints it announces: this supernode connects from
/// its own address and runs a TLS 1.3 handshake pinned to the peer's key. The server's signature in
/// that handshake covers this supernode's fresh random, so only the peer holding the key completes
/// it: a peer cannot claim an address it does not answer at, nor have another peer's address
/// vouched for. Bounded: rounds per peer, dials per target address (whoever announces it), dials in
/// flight; never an address of a narrower scope than the session came from (a remote peer cannot
/// aim this supernode at its own loopback or LAN), never link-local, multicast or unspecified.
/// </summary>
public sealed partial class DialBack : IDisposable
{
    private readonly SupernodeOptions options;
    private readonly SupernodeMetrics metrics;
    private readonly ILogger<DialBack> logger;
    private readonly PeerIdentity _identity = PeerIdentity.Generate();
    private readonly X509Certificate2 _certificate;
    private readonly PartitionedRateLimiter<string> _rounds;
    private readonly PartitionedRateLimiter<string> _addresses;
    private readonly SemaphoreSlim _inFlight;

    public DialBack(SupernodeOptions options, SupernodeMetrics metrics, ILogger<DialBack> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.metrics = metrics;
        this.logger = logger;
        // A throwaway key of its own: peer hosts admit any key, and this one is never charged for calls.
        _certificate = _identity.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        _rounds = PerMinute(options.DialBackRoundsPerPeerPerMinute);
        _addresses = PerMinute(options.DialBacksPerAddressPerMinute);
        _inFlight = new SemaphoreSlim(options.DialBacksInFlight, options.DialBacksInFlight);
    }

    /// <summary>
    /// Whether a dial-back round for <paramref name="peer"/> may run now (charged once per round); false
    /// when it ran its rounds this minute, and its endpoints stay as they were.
    /// </summary>
    public bool TryStartRound(PeerId peer)
    {
        using var lease = _rounds.AttemptAcquire(peer.ToString());
        if (!lease.IsAcquired)
        {
            metrics.DialBacks.WithLabels("round_limited").Inc();
        }

        return lease.IsAcquired;
    }

    /// <summary>Dials each of <paramref name="urls"/> once (in parallel) and says what answered.</summary>
    public async Task<IReadOnlyList<EndpointResult>> CheckAsync(PeerId peer, IPAddress? sessionFrom, IReadOnlyList<string> urls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(urls);
        return await Task.WhenAll(urls.Distinct(StringComparer.Ordinal).Select(url => CheckOneAsync(peer, sessionFrom, url, cancellationToken)));
    }

    /// <summary>
    /// Whether this supernode may dial <paramref name="target"/> for a session from <paramref name="sessionFrom"/>:
    /// global addresses always; loopback and private ones only when the session itself comes from that
    /// scope or a narrower one (the same machine, the same site).
    /// </summary>
    public static bool MayDial(IPAddress target, IPAddress? sessionFrom)
    {
        var scope = AddressScopes.Of(target);
        if (scope is AddressScope.Never)
        {
            return false;
        }

        if (scope is AddressScope.Global)
        {
            return true;
        }

        var from = sessionFrom is null ? AddressScope.Global : AddressScopes.Of(sessionFrom);
        return from != AddressScope.Never && from <= scope;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _certificate.Dispose();
        _identity.Dispose();
        _rounds.Dispose();
        _addresses.Dispose();
        _inFlight.Dispose();
    }

    private static PartitionedRateLimiter<string> PerMinute(int permits) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = permits,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    private async Task<EndpointResult> CheckOneAsync(PeerId peer, IPAddress? sessionFrom, string url, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Port <= 0)
        {
            return Result(url, "not_url", "not an https:// URL with a port");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.DialBackTimeout);
        IPAddress? address;
        try
        {
            address = IPAddress.TryParse(uri.Host.Trim('[', ']'), out var literal)
                ? literal
                : (await Dns.GetHostAddressesAsync(uri.DnsSafeHost, timeout.Token)).FirstOrDefault(a => MayDial(a, sessionFrom));
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ArgumentException)
        {
            return Result(url, "no_address", $"the name {uri.Host} did not resolve within {options.DialBackTimeout.TotalSeconds:0.#} s");
        }

        if (address is null || !MayDial(address, sessionFrom))
        {
            return Result(url, "out_of_scope", AddressScopes.Of(address ?? IPAddress.None) switch
            {
                AddressScope.Loopback => "a loopback address, and the session comes from another machine",
                AddressScope.Private => "a private-network address, and the session comes from outside that network",
                _ => "not an address this supernode dials (unspecified, link-local, multicast or reserved)",
            });
        }

        using (var lease = _addresses.AttemptAcquire(address.ToString()))
        {
            if (!lease.IsAcquired)
            {
                return Result(url, "address_limited", $"{address} was dialed back its {options.DialBacksPerAddressPerMinute} times this minute; it is checked again later");
            }
        }

        if (!await _inFlight.WaitAsync(0, cancellationToken))
        {
            return Result(url, "busy", "this supernode is running its limit of dial-backs; it is checked again later");
        }

        try
        {
            return await HandshakeAsync(peer, url, new IPEndPoint(address, uri.Port), timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Result(url, "timeout", $"no answer within {options.DialBackTimeout.TotalSeconds:0.#} s (a NAT or firewall in the way, or nothing there)");
        }
        finally
        {
            _inFlight.Release();
        }
    }

    private async Task<EndpointResult> HandshakeAsync(PeerId peer, string url, IPEndPoint target, CancellationToken cancellationToken)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(target, cancellationToken);
        }
        catch (SocketException ex)
        {
            return Result(url, "refused", ex.SocketErrorCode == SocketError.ConnectionRefused ? "nothing listens there (connection refused)" : $"could not connect ({ex.SocketErrorCode})");
        }

        PeerId? presented = null;
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        try
        {
            await tls.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = string.Empty,
                    ClientCertificates = [_certificate],
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    EnabledSslProtocols = SslProtocols.Tls13,
                    ApplicationProtocols = [SslApplicationProtocol.Http2],
                    RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    {
                        presented = PeerCertificates.TryGetPeerId(certificate, out var id) ? id : null;
                        return presented is { } p && p.Equals(peer);
                    },
                },
                cancellationToken);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            LogHandshakeFailed(logger, peer, url, ex.Message);
            return presented is { } other && !other.Equals(peer)
                ? Result(url, "other_key", "another key answered there (a stale address, or someone else's)")
                : Result(url, "no_tls", "something answered there, but not a peer host (the TLS handshake failed)");
        }

        metrics.DialBacks.WithLabels("reachable").Inc();
        return new EndpointResult(url, true, string.Empty);
    }

    private EndpointResult Result(string url, string outcome, string reason)
    {
        metrics.DialBacks.WithLabels(outcome).Inc();
        return new EndpointResult(url, false, reason);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Dial-back of {Peer} at {Url} failed its handshake: {Reason}")]
    private static partial void LogHandshakeFailed(ILogger logger, PeerId peer, string url, string reason);
}
