using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Network;
using Hybrid.Client.Peers;
using Hybrid.Client.Store;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hybrid.Client.Daemon;

/// <summary>Settings of a <see cref="PeerDaemon"/>.</summary>
public sealed class PeerDaemonOptions
{
    /// <summary>The user's home directory (store, downloads, control socket).</summary>
    public required string HomePath { get; init; }

    /// <summary>Supernode URLs to start from.</summary>
    public required IReadOnlyList<string> Supernodes { get; init; }

    /// <summary>The name other peers see.</summary>
    public required string DisplayName { get; init; }

    /// <summary>HOST:PORT for the peer host (default: every interface, a free port; loopback only in private mode).</summary>
    public string? Listen { get; init; }

    /// <summary>HOST:PORT (or https URL) to advertise instead of the listening address, e.g. a forwarded port.</summary>
    public string? Advertise { get; init; }

    /// <summary>Private mode: advertise no address, and reach other peers only through relays.</summary>
    public bool Private { get; init; }

    /// <summary>Upload rate limit for goods data, in bytes per second (0: none).</summary>
    public long MaxUploadBytesPerSecond { get; init; }

    /// <summary>How often the mailbox and mailbox deliveries are checked while in session.</summary>
    public TimeSpan MailPollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Where the daemon logs.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>
/// A running peer: a session with the supernode network (with failover), a peer host (Kestrel,
/// HTTP/2, mutual TLS pinned to PeerIds) serving the peer protocol, a dialer that reaches other
/// peers directly or through relays, a bridge that feeds relayed links into the peer host, a mailbox
/// worker, and the control API on an owner-only Unix socket in the home directory.
/// </summary>
public sealed partial class PeerDaemon : IAsyncDisposable
{
    /// <summary>File name of the control socket in the home directory.</summary>
    public const string ControlSocketName = "control.sock";

    private static readonly TimeSpan CertificateLifetime = TimeSpan.FromDays(365);
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _mailWake = new(0, 1);
    private readonly List<Task> _background = [];
    private readonly PeerDaemonOptions _options;
    private readonly ILogger _logger;
    private readonly X509Certificate2 _certificate;
    private readonly PeerIdentity _identity;
    private WebApplication? _host;
    private WebApplication? _control;
    private readonly Queue<string> _events = new();
    private IPEndPoint _bridgeTarget = new(IPAddress.Loopback, 0);
    private int _bridges;

    private PeerDaemon(PeerIdentity identity, PeerDaemonOptions options)
    {
        _identity = identity;
        _options = options;
        _logger = options.LoggerFactory.CreateLogger<PeerDaemon>();
        _certificate = identity.CreateCertificate(DateTimeOffset.UtcNow, CertificateLifetime);
        Store = new LocalStore(Path.Combine(options.HomePath, "store.db"));
    }

    /// <summary>The local store.</summary>
    public LocalStore Store { get; }

    /// <summary>Chats and orders.</summary>
    public Messaging Messaging { get; private set; } = null!;

    /// <summary>Goods data transfers.</summary>
    public Transfers Transfers { get; private set; } = null!;

    /// <summary>The session with the supernode network.</summary>
    public SupernodeConnection Connection { get; private set; } = null!;

    /// <summary>Links to other peers.</summary>
    public PeerDialer Dialer { get; private set; } = null!;

    /// <summary>The endpoints advertised to other peers (none in private mode).</summary>
    public IReadOnlyList<string> Endpoints { get; private set; } = [];

    /// <summary>The peer host's bound address.</summary>
    public IPEndPoint HostEndPoint { get; private set; } = new(IPAddress.Loopback, 0);

    /// <summary>The control socket's path.</summary>
    public string ControlSocketPath => Path.Combine(_options.HomePath, ControlSocketName);

    /// <summary>This peer's id.</summary>
    public PeerId PeerId => _identity.Id;

    /// <summary>Starts everything; the session opens in the background.</summary>
    public static async Task<PeerDaemon> StartAsync(PeerIdentity identity, PeerDaemonOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(options);
        var daemon = new PeerDaemon(identity, options);
        try
        {
            await daemon.StartCoreAsync(cancellationToken);
            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
    }

    /// <summary>What the daemon is doing now.</summary>
    public StatusReply Status()
    {
        var reply = new StatusReply
        {
            PeerId = _identity.Id.ToString(),
            DisplayName = _options.DisplayName,
            Supernode = Connection.CurrentSupernode ?? string.Empty,
            Private = _options.Private,
            MailboxPending = Store.PendingMail().Count,
            MailRefused = Store.RefusedMailCount(),
            ForgedAnswers = Connection.ForgedAnswers,
        };
        reply.Refused.AddRange(Store.RefusedMail(5).Select(r => new RefusedMail { ItemId = r.ItemId, Sender = r.Sender, Reason = r.Reason, RefusedMs = r.RefusedMs }));
        reply.Endpoints.AddRange(Endpoints);
        lock (_events)
        {
            reply.Events.AddRange(_events);
        }

        reply.Links.AddRange(Dialer.Links.Select(l => new LinkView
        {
            PeerId = l.Peer.ToString(),
            Path = l.Path == LinkPath.Direct ? "direct" : "relayed",
            Address = l.Address,
        }));
        return reply;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        if (_control is not null)
        {
            await _control.StopAsync(CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await _control.DisposeAsync();
            File.Delete(ControlSocketPath);
        }

        if (Connection is not null)
        {
            await Connection.DisposeAsync();
        }

        if (_host is not null)
        {
            await _host.StopAsync(CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await _host.DisposeAsync();
        }

        await Task.WhenAll(_background).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Dialer?.Dispose();
        Store.Dispose();
        _certificate.Dispose();
        _mailWake.Dispose();
        _stopping.Dispose();
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.HomePath);
        PrepareControlSocket();
        _host = BuildPeerHost();
        await _host.StartAsync(cancellationToken);
        var bound = new Uri(_host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        var boundAddress = IPAddress.Parse(bound.Host.Trim('[', ']'));
        HostEndPoint = new IPEndPoint(boundAddress, bound.Port);
        _bridgeTarget = new IPEndPoint(boundAddress.Equals(IPAddress.Any) || boundAddress.Equals(IPAddress.IPv6Any) ? IPAddress.Loopback : boundAddress, bound.Port);
        Endpoints = AdvertisedEndpoints(HostEndPoint);

        Connection = new SupernodeConnection(
            _identity,
            new SupernodeConnectionOptions { Seeds = _options.Supernodes, DisplayName = _options.DisplayName, Endpoints = Endpoints, WorkStampFile = Path.Combine(_options.HomePath, "work.stamp") },
            _options.LoggerFactory.CreateLogger<SupernodeConnection>());
        Dialer = new PeerDialer(_identity, _certificate, Connection, _options.Private, _options.LoggerFactory.CreateLogger<PeerDialer>());
        Messaging = new Messaging(_identity, Store, Dialer, Connection, TimeProvider.System, _options.LoggerFactory.CreateLogger<Messaging>());
        Transfers = new Transfers(Store, Dialer, Path.Combine(_options.HomePath, "downloads"), _options.MaxUploadBytesPerSecond, _options.LoggerFactory.CreateLogger<Transfers>());

        Connection.RelayOffered += (_, linkId) => Track(BridgeAsync(linkId));
        Connection.Connected += (_, e) => { Remember($"connected to {e.SupernodeUrl}"); WakeMail(); };
        Connection.FailedOver += (_, e) => { Remember($"moved from {e.PreviousUrl} to {e.SupernodeUrl}"); WakeMail(); };
        Connection.ForgedAnswerReceived += (_, e) => Remember($"dropped a forged answer from {e.SupernodeUrl}: {e.Message}");
        Connection.Disconnected += (_, e) => Remember($"lost {e.SupernodeUrl}: {e.Reason}");
        Connection.MailWaiting += (_, _) => WakeMail();

        _control = BuildControl();
        await _control.StartAsync(cancellationToken);
        Connection.Start();
        Track(MailLoopAsync(_stopping.Token));
    }

    private WebApplication BuildPeerHost()
    {
        var listen = ParseListen(_options.Listen ?? (_options.Private ? "127.0.0.1:0" : "0.0.0.0:0"));
        var builder = WebApplication.CreateSlimBuilder(HostOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(listen, endpoint =>
            {
                endpoint.Protocols = HttpProtocols.Http2;
                endpoint.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = _certificate,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    // Any peer may connect; who it is comes from its key. Refusals are gRPC statuses the caller can read.
                    ClientCertificateValidation = (certificate, _, _) => PeerCertificates.TryGetPeerId(certificate, out _),
                    CheckCertificateRevocation = false,
                    SslProtocols = SslProtocols.Tls13,
                });
            });
        });
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = PeerProtocol.MaxMessageBytes;
            grpc.MaxSendMessageSize = PeerProtocol.MaxMessageBytes;
            grpc.Interceptors.Add<PeerErrorInterceptor>();
        });
        builder.Services.AddSingleton(_ => Messaging);
        builder.Services.AddSingleton(_ => Transfers);
        var app = builder.Build();
        app.MapGrpcService<PeerLinkService>();
        return app;
    }

    private WebApplication BuildControl()
    {
        var socketPath = ControlSocketPath;
        var builder = WebApplication.CreateSlimBuilder(HostOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = endpoint =>
        {
            var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
            if (endpoint is UnixDomainSocketEndPoint && !OperatingSystem.IsWindows())
            {
                // Between bind and listen: nobody but the owner can ever connect.
                File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            return socket;
        });
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenUnixSocket(socketPath, endpoint => endpoint.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc(grpc => grpc.Interceptors.Add<ControlErrorInterceptor>());
        builder.Services.AddSingleton(this);
        var app = builder.Build();
        app.MapGrpcService<ControlService>();
        return app;
    }

    /// <summary>
    /// The daemon's hosts read no configuration files, so they watch none: each file watcher is an
    /// inotify instance, and a user has only 128 of those on a default Linux.
    /// </summary>
    private WebApplicationOptions HostOptions() => new()
    {
        ContentRootPath = _options.HomePath,
        Args = ["--hostBuilder:reloadConfigOnChange=false"],
    };

    /// <summary>A socket file left by a crashed daemon is removed; one that answers means another daemon runs for this home.</summary>
    private void PrepareControlSocket()
    {
        var path = ControlSocketPath;
        if (!File.Exists(path))
        {
            return;
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new InvalidOperationException($"a daemon is already running for {_options.HomePath}");
            }
            catch (SocketException)
            {
                // Nobody listens: a stale file from a daemon that did not stop cleanly.
            }
        }

        File.Delete(path);
    }

    private List<string> AdvertisedEndpoints(IPEndPoint bound)
    {
        if (_options.Private)
        {
            return [];
        }

        if (!string.IsNullOrWhiteSpace(_options.Advertise))
        {
            return [_options.Advertise.StartsWith("https://", StringComparison.OrdinalIgnoreCase) ? _options.Advertise : "https://" + _options.Advertise];
        }

        if (!bound.Address.Equals(IPAddress.Any) && !bound.Address.Equals(IPAddress.IPv6Any))
        {
            return [$"https://{bound}"];
        }

        var addresses = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Where(a => a.Address.AddressFamily == AddressFamily.InterNetwork)
            .Select(a => $"https://{a.Address}:{bound.Port}")
            .Take(4)
            .ToList();
        return addresses.Count > 0 ? addresses : [$"https://127.0.0.1:{bound.Port}"];
    }

    private static IPEndPoint ParseListen(string text) =>
        IPEndPoint.TryParse(text, out var endpoint)
            ? endpoint
            : throw new ArgumentException($"'{text}' is not HOST:PORT with an IP address, e.g. 0.0.0.0:7400");

    /// <summary>Feeds one relayed link into the peer host's own socket, so TLS runs end to end through the relay.</summary>
    private async Task BridgeAsync(string linkId)
    {
        Interlocked.Increment(ref _bridges);
        try
        {
            using var ended = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            using var call = Connection.RelayCall(ended.Token);
            await call.RequestStream.WriteAsync(new RelayFrame { Accept = linkId }, ended.Token);
            using var socket = new Socket(_bridgeTarget.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(_bridgeTarget, ended.Token);
            await using var local = new NetworkStream(socket, ownsSocket: false);
            var up = Task.Run(
                async () =>
                {
                    var buffer = new byte[RelayStream.MaxFrameBytes];
                    int read;
                    while ((read = await local.ReadAsync(buffer, ended.Token)) > 0)
                    {
                        await call.RequestStream.WriteAsync(new RelayFrame { Data = ByteString.CopyFrom(buffer, 0, read) }, ended.Token);
                    }
                },
                ended.Token);
            var down = Task.Run(
                async () =>
                {
                    await foreach (var frame in call.ResponseStream.ReadAllAsync(ended.Token))
                    {
                        if (frame.KindCase == RelayFrame.KindOneofCase.Data)
                        {
                            await local.WriteAsync(frame.Data.Memory, ended.Token);
                        }
                    }
                },
                ended.Token);
            await Task.WhenAny(up, down);
            await ended.CancelAsync();
            await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        catch (Exception ex) when (ex is RpcException or IOException or SocketException or OperationCanceledException or InvalidOperationException)
        {
            LogBridgeEnded(_logger, linkId, ex.Message);
        }
        finally
        {
            Interlocked.Decrement(ref _bridges);
        }
    }

    private async Task MailLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await _mailWake.WaitAsync(_options.MailPollInterval, stopping);
                if (!Connection.InSession)
                {
                    continue;
                }

                await Messaging.TakeMailAsync(stopping);
                await Messaging.CheckMailDeliveryAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is RpcException or IOException or InvalidOperationException)
            {
                LogMailFailed(_logger, ex.Message);
            }
        }
    }

    private void Remember(string what)
    {
        lock (_events)
        {
            _events.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss} {what}");
            while (_events.Count > 20)
            {
                _events.Dequeue();
            }
        }
    }

    private void WakeMail()
    {
        try
        {
            if (_mailWake.CurrentCount == 0)
            {
                _mailWake.Release();
            }
        }
        catch (Exception ex) when (ex is SemaphoreFullException or ObjectDisposedException)
        {
            // Already awake, or stopping.
        }
    }

    private void Track(Task task)
    {
        lock (_background)
        {
            _background.RemoveAll(t => t.IsCompleted);
            _background.Add(task);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relayed link {LinkId} ended: {Reason}")]
    private static partial void LogBridgeEnded(ILogger logger, string linkId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Mailbox check failed: {Reason}")]
    private static partial void LogMailFailed(ILogger logger, string reason);
}
