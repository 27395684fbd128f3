using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Network;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// Direct connections between two peers that are both behind NATs: a simultaneous TCP open,
/// coordinated over the relayed link they already share (the <c>Punch</c> call, after libp2p's
/// DCUtR). Each side connects from its peer host's port to the other's addresses as the directory
/// lists them (endpoints and candidates, the observed NAT mapping among them), never to addresses
/// the other side merely claims. The caller connects first, so its own NAT already expects the
/// callee's packets when they come; the callee connects on <c>sync</c>. The caller is then the TLS
/// client and the callee the TLS server (its peer host takes the socket in process).
/// </summary>
public sealed partial class HolePunch(SupernodeConnection connection, InProcessListener host, bool privateMode, ILogger<HolePunch> logger) : IDisposable
{
    /// <summary>Attempts per punch before the link stays relayed.</summary>
    public const int MaxAttempts = 3;

    /// <summary>Addresses of the other peer tried at once, at most.</summary>
    public const int MaxAddresses = 4;

    /// <summary>Punches this peer answers at once; more are refused until one ends.</summary>
    public const int MaxResponding = 8;

    /// <summary>Punched connections this peer serves at once.</summary>
    public const int MaxServed = 64;

    private static readonly TimeSpan MinimumWindow = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<PeerId, byte> _responding = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _served;

    /// <summary>Whether this peer can punch at all: not private, and its host port is known.</summary>
    public bool Available => !privateMode && connection.LocalEndPoint is not null;

    /// <summary>
    /// Runs the caller's side over <paramref name="relayed"/> towards <paramref name="target"/>; the
    /// connected socket and the attempt that made it, or null with the reason when every attempt failed.
    /// </summary>
    public async Task<(Socket? Socket, string Reason, int Attempts)> InitiateAsync(PeerLink.PeerLinkClient relayed, PeerInfo target, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(relayed);
        ArgumentNullException.ThrowIfNull(target);
        if (connection.LocalEndPoint is not { } local || privateMode)
        {
            return (null, "this peer does not take direct connections (private mode, or its host listens on loopback)", 0);
        }

        var addresses = Addresses(target, local.AddressFamily);
        if (addresses.Count == 0)
        {
            return (null, "the directory lists no address of the peer to punch towards", 0);
        }

        if (connection.Reachability is { Reachable: true } && target.Endpoints.Count == 0)
        {
            return await ReverseAsync(relayed, cancellationToken);
        }

        var reason = string.Empty;
        for (var attempt = 1; attempt <= MaxAttempts; attempt++)
        {
            using var step = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            step.CancelAfter(StepTimeout);
            using var call = relayed.Punch(cancellationToken: step.Token);
            try
            {
                var started = Stopwatch.GetTimestamp();
                await call.RequestStream.WriteAsync(new PunchMessage { Connect = new PunchConnect { Attempt = (uint)attempt, Hard = IsHard } }, step.Token);
                if (!await call.ResponseStream.MoveNext(step.Token) || call.ResponseStream.Current.KindCase != PunchMessage.KindOneofCase.Connect)
                {
                    return (null, "the peer ended the punch", attempt);
                }

                var theirsHard = call.ResponseStream.Current.Connect.Hard;
                if (IsHard && theirsHard)
                {
                    return (null, "both peers are behind NATs that change the port for every destination (symmetric): no punch can meet", attempt);
                }

                var roundTrip = Stopwatch.GetElapsedTime(started);
                var window = roundTrip * 3 > MinimumWindow ? roundTrip * 3 : MinimumWindow;
                var connecting = ConnectAsync(local, addresses, theirsHard, window, step.Token);
                await call.RequestStream.WriteAsync(new PunchMessage { Sync = new PunchSync() }, step.Token);
                var socket = await connecting;
                await call.RequestStream.CompleteAsync();
                if (socket is not null)
                {
                    LogPunched(logger, target.PeerId, socket.RemoteEndPoint, attempt, roundTrip.TotalMilliseconds);
                    return (socket, string.Empty, attempt);
                }

                reason = $"no connection within {window.TotalSeconds:0.#} s (attempt {attempt}; the NATs map each destination differently, or drop what they did not ask for)";
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.FailedPrecondition or StatusCode.ResourceExhausted or StatusCode.Unimplemented or StatusCode.Unauthenticated)
            {
                return (null, $"the peer declined: {ex.Status.Detail}", attempt);
            }
            catch (RpcException ex)
            {
                reason = $"the coordination failed ({ex.StatusCode})";
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                reason = $"the peer did not answer within {StepTimeout.TotalSeconds:0} s";
            }
        }

        return (null, reason, MaxAttempts);
    }

    /// <summary>
    /// Connection reversal (this peer is reachable, the other is not): asks the peer to dial this one
    /// and open <c>Reverse</c>; the link arrives through the dialer's reverse side, so no socket is returned.
    /// </summary>
    private static async Task<(Socket? Socket, string Reason, int Attempts)> ReverseAsync(PeerLink.PeerLinkClient relayed, CancellationToken cancellationToken)
    {
        using var step = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        step.CancelAfter(StepTimeout * 2);
        try
        {
            using var call = relayed.Punch(cancellationToken: step.Token);
            await call.RequestStream.WriteAsync(new PunchMessage { Connect = new PunchConnect { Attempt = 1, Reverse = true } }, step.Token);
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(step.Token))
            {
                if (call.ResponseStream.Current.KindCase == PunchMessage.KindOneofCase.Done)
                {
                    var done = call.ResponseStream.Current.Done;
                    return (null, done.Connected ? Reversed : $"the peer could not dial this one back: {done.Reason}", 1);
                }
            }

            return (null, "the peer ended the reversal without an answer", 1);
        }
        catch (RpcException ex)
        {
            return (null, $"the peer declined the reversal: {ex.Status.Detail}", 1);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"the peer did not dial back within {(StepTimeout * 2).TotalSeconds:0} s", 1);
        }
    }

    /// <summary>The reason <see cref="InitiateAsync"/> gives when the link arrives by reversal instead of a socket.</summary>
    public const string Reversed = "reversed: the peer dialed this one and opened the other direction";

    /// <summary>
    /// Opens <c>Reverse</c> on a freshly punched link and serves what the peer sends inside it with
    /// this peer's host (the peer's own link to this one), until either side ends it.
    /// </summary>
    public void ServeReverse(PeerLink.PeerLinkClient direct, PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(direct);
        ServeInBackground(
            async () =>
            {
                using var call = direct.Reverse(cancellationToken: _stopping.Token);
                using var stream = new RelayStream(call);
                await host.ServeAsync(stream, null, _stopping.Token);
            },
            reason => LogReverseEnded(logger, peer, reason),
            refused: null);
    }

    /// <summary>The callee's side: answers <c>connect</c>, connects on <c>sync</c>, serves what connects.</summary>
    public async Task RespondAsync(PeerId caller, IAsyncStreamReader<PunchMessage> requests, IServerStreamWriter<PunchMessage> responses, Func<CancellationToken, Task<string?>> dialBack, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dialBack);
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentNullException.ThrowIfNull(responses);
        if (connection.LocalEndPoint is not { } local || privateMode)
        {
            throw Refuse.WrongState("this peer does not take direct connections (private mode, or its host listens on loopback); stay on the relay");
        }

        if (_responding.Count >= MaxResponding || !_responding.TryAdd(caller, 0))
        {
            throw Refuse.Exhausted("this peer is already punching with you, or with as many peers as it does at once; stay on the relay and try later", TimeSpan.FromSeconds(30));
        }

        try
        {
            // The caller's addresses come from the directory (verified answers), never from the caller.
            var info = await connection.LookupPeerAsync(caller, cancellationToken);
            var addresses = Addresses(info, local.AddressFamily);
            var callerHard = false;
            using var step = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            step.CancelAfter(StepTimeout * MaxAttempts);
            while (await requests.MoveNext(step.Token))
            {
                switch (requests.Current.KindCase)
                {
                    case PunchMessage.KindOneofCase.Connect when requests.Current.Connect.Reverse:
                        // The caller is reachable: dial it (its verified endpoint, pinned) and open Reverse there.
                        var failure = await dialBack(step.Token);
                        await responses.WriteAsync(new PunchMessage { Done = new PunchDone { Connected = failure is null, Reason = failure ?? string.Empty } }, step.Token);
                        return;
                    case PunchMessage.KindOneofCase.Connect:
                        callerHard = requests.Current.Connect.Hard;
                        await responses.WriteAsync(new PunchMessage { Connect = new PunchConnect { Attempt = requests.Current.Connect.Attempt, Hard = IsHard } }, step.Token);
                        break;
                    case PunchMessage.KindOneofCase.Sync:
                        var socket = addresses.Count == 0 ? null : await ConnectAsync(local, addresses, callerHard, MinimumWindow, step.Token);
                        if (socket is not null)
                        {
                            Serve(socket);
                        }

                        await responses.WriteAsync(new PunchMessage { Done = new PunchDone { Connected = socket is not null, Reason = socket is null ? "no connection from this side" : string.Empty } }, step.Token);
                        return;
                    default:
                        return;
                }
            }
        }
        finally
        {
            _responding.TryRemove(caller, out _);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }

    /// <summary>
    /// The other peer's addresses worth punching towards: IP literals of this family, not loopback or
    /// link-local; private-network addresses only when both peers are seen at the same public address
    /// (the same LAN), since elsewhere such an address is somebody else's machine.
    /// </summary>
    private List<IPEndPoint> Addresses(PeerInfo info, AddressFamily family)
    {
        var mine = PublicAddress(connection.ObservedAddress);
        var theirs = info.Candidates.Concat(info.Endpoints).Select(e => PublicAddress(e.Url)).OfType<IPAddress>().Where(a => !IsPrivate(a));
        var sameLan = mine is not null && theirs.Contains(mine);
        return [.. info.Candidates.Concat(info.Endpoints)
            .Select(e => Uri.TryCreate(e.Url, UriKind.Absolute, out var uri) && IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && uri.Port > 0 ? new IPEndPoint(ip, uri.Port) : null)
            .OfType<IPEndPoint>()
            .Where(e => (e.AddressFamily == family || family == AddressFamily.InterNetworkV6) && AddressScopes.Of(e.Address) is not (AddressScope.Loopback or AddressScope.Never))
            .Where(e => sameLan || !IsPrivate(e.Address))
            .Distinct()
            .Take(MaxAddresses)];
    }

    /// <summary>The address part of "ip:port" or an https:// URL.</summary>
    private static IPAddress? PublicAddress(string? text) =>
        text is null ? null
        : Uri.TryCreate(text.Contains("://", StringComparison.Ordinal) ? text : "https://" + text, UriKind.Absolute, out var uri) && IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) ? ip
        : null;

    private static bool IsPrivate(IPAddress address) => AddressScopes.Of(address) == AddressScope.Private;

    /// <summary>
    /// Whether this peer's NAT changes the port per destination: its session left from the host
    /// port and the supernode saw another (a symmetric NAT, or a port-remapping one).
    /// </summary>
    public bool IsHard =>
        connection.LocalEndPoint is { } local && IPEndPoint.TryParse(connection.ObservedAddress ?? string.Empty, out var observed) && observed.Port != local.Port;

    /// <summary>
    /// The connects of one punch attempt. Neither side hard: from the host port to each address.
    /// The other side hard: from the host port to <see cref="BirthdayProbes"/> random ports of each
    /// of its public addresses (each opens this NAT for one port of theirs). This side hard: from
    /// <see cref="BirthdayProbes"/> fresh sockets (each gets a new port from this NAT) to each address.
    /// </summary>
    private Task<Socket?> ConnectAsync(IPEndPoint local, List<IPEndPoint> addresses, bool theirsHard, TimeSpan window, CancellationToken cancellationToken)
    {
        if (theirsHard)
        {
            var ports = RandomPorts(BirthdayProbes);
            return ConnectFirstAsync(local, [.. addresses.Where(a => !IsPrivate(a.Address)).SelectMany(a => ports.Select(p => new IPEndPoint(a.Address, p)))], window, cancellationToken);
        }

        return IsHard
            ? ConnectFirstAsync(null, [.. addresses.Where(a => !IsPrivate(a.Address)).SelectMany(a => Enumerable.Repeat(a, BirthdayProbes))], window, cancellationToken)
            : ConnectFirstAsync(local, addresses, window, cancellationToken);
    }

    /// <summary>Probes per address when one side's NAT is hard: 512 each way meet with about 98 % chance per attempt (1 - e^-(512²/64,512)).</summary>
    public const int BirthdayProbes = 512;

    private static int[] RandomPorts(int count)
    {
        var ports = new HashSet<int>();
        while (ports.Count < count)
        {
            ports.Add(System.Security.Cryptography.RandomNumberGenerator.GetInt32(1024, 65536));
        }

        return [.. ports];
    }

    /// <summary>
    /// Connects to every address at once (from <paramref name="local"/>, or from fresh ephemeral ports
    /// when null); the first to connect wins, the rest are closed.
    /// </summary>
    private static async Task<Socket?> ConnectFirstAsync(IPEndPoint? local, List<IPEndPoint> addresses, TimeSpan window, CancellationToken cancellationToken)
    {
        using var race = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        race.CancelAfter(window);
        var attempts = addresses.Select(async a =>
        {
            try
            {
                return local is null ? await ConnectEphemeralAsync(a, race.Token) : await PortReuse.TryConnectFromAsync(local, a, race.Token);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                return null;
            }
        }).ToList();
        Socket? winner = null;
        while (attempts.Count > 0)
        {
            var done = await Task.WhenAny(attempts);
            attempts.Remove(done);
            if (await done is { } socket)
            {
                if (winner is null)
                {
                    winner = socket;
                    await race.CancelAsync();
                }
                else
                {
                    socket.Dispose();
                }
            }
        }

        return winner;
    }

    private static async Task<Socket?> ConnectEphemeralAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(target, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void Serve(Socket socket) =>
        ServeInBackground(
            () => host.ServeAsync(new NetworkStream(socket, ownsSocket: true), socket.RemoteEndPoint, _stopping.Token),
            reason => LogServeEnded(logger, reason),
            refused: socket.Dispose);

    /// <summary>
    /// Runs one connection the peer host serves (a punched socket, a reverse link) in the background,
    /// within <see cref="MaxServed"/> at once; over that, <paramref name="refused"/> runs instead.
    /// </summary>
    private void ServeInBackground(Func<Task> serve, Action<string> ended, Action? refused)
    {
        if (Interlocked.Increment(ref _served) > MaxServed)
        {
            Interlocked.Decrement(ref _served);
            refused?.Invoke();
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await serve();
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException or ObjectDisposedException or RpcException)
            {
                ended(ex.Message);
            }
            finally
            {
                Interlocked.Decrement(ref _served);
            }
        });
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Punched a direct connection to {Peer} at {Remote} (attempt {Attempt}, relay round trip {RoundTripMs:0.0} ms)")]
    private static partial void LogPunched(ILogger logger, string peer, EndPoint? remote, int attempt, double roundTripMs);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The reverse link to {Peer} ended: {Reason}")]
    private static partial void LogReverseEnded(ILogger logger, PeerId peer, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A punched connection ended: {Reason}")]
    private static partial void LogServeEnded(ILogger logger, string reason);
}
