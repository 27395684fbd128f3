using System.Net;
using Hybrid.Client.Chat;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Mailbox;
using Hybrid.Client.Orders;
using Hybrid.Client.Store;
using Hybrid.Client.Transfers;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hybrid.Client.Daemon;

/// <summary>Settings of a <see cref="PeerDaemon"/>.</summary>
public sealed class PeerDaemonOptions
{
    /// <summary>The user's home directory (store, downloads, control socket, log).</summary>
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

    /// <summary>
    /// How long a new relayed link is used before a hole punch is tried (default: at once). From
    /// <c>HYBRID_PUNCH_DELAY_MS</c>: tests use it to upgrade a link while a transfer runs on it.
    /// </summary>
    public TimeSpan PunchDelay { get; init; } =
        int.TryParse(Environment.GetEnvironmentVariable("HYBRID_PUNCH_DELAY_MS"), System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms > 0 ? TimeSpan.FromMilliseconds(Math.Min(ms, 600_000)) : TimeSpan.Zero;

    /// <summary>How often the mailbox and mailbox deliveries are checked while in session.</summary>
    public TimeSpan MailPollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>What other peers may make this peer do and store.</summary>
    public PeerBudgetOptions Budgets { get; init; } = new();

    /// <summary>Where the daemon logs besides its own file in the home (e.g. the console).</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>
/// A running peer, composed as a generic host of capabilities: the peer host (Kestrel, HTTP/2,
/// mutual TLS pinned to PeerIds) serving chats, orders and goods data within per-peer budgets; the
/// session with the supernode network (with failover); the dialer and the relay bridge; the mail
/// loop; and the control API on an owner-only Unix socket in the home. It logs to a rotated file there.
/// </summary>
public sealed class PeerDaemon : IAsyncDisposable
{
    /// <summary>File name of the control socket in the home directory.</summary>
    public const string ControlSocketName = ControlHost.SocketName;

    private readonly IHost _host;
    private bool _disposed;

    private PeerDaemon(IHost host) => _host = host;

    /// <summary>The daemon's services (for tests and tools).</summary>
    public IServiceProvider Services => _host.Services;

    /// <summary>The local store.</summary>
    public LocalStore Store => Services.GetRequiredService<LocalStore>();

    /// <summary>Chats.</summary>
    public ChatService Chats => Services.GetRequiredService<ChatService>();

    /// <summary>Orders.</summary>
    public OrderService Orders => Services.GetRequiredService<OrderService>();

    /// <summary>Goods data transfers.</summary>
    public TransferService Transfers => Services.GetRequiredService<TransferService>();

    /// <summary>The session with the supernode network.</summary>
    public SupernodeConnection Connection => Services.GetRequiredService<SupernodeConnection>();

    /// <summary>Links to other peers.</summary>
    public PeerDialer Dialer => Services.GetRequiredService<PeerDialer>();

    /// <summary>The endpoints advertised to other peers (none in private mode).</summary>
    public IReadOnlyList<string> Endpoints => Services.GetRequiredService<PeerHost>().Endpoints;

    /// <summary>The peer host's bound address.</summary>
    public IPEndPoint HostEndPoint => Services.GetRequiredService<PeerHost>().EndPoint;

    /// <summary>The control socket's path.</summary>
    public string ControlSocketPath => Services.GetRequiredService<ControlHost>().SocketPath;

    /// <summary>The daemon's log file.</summary>
    public string LogFile => Services.GetRequiredService<DaemonStatus>().LogFile;

    /// <summary>This peer's id.</summary>
    public PeerId PeerId => Services.GetRequiredService<PeerIdentity>().Id;

    /// <summary>Starts everything; the session opens in the background.</summary>
    public static async Task<PeerDaemon> StartAsync(PeerIdentity identity, PeerDaemonOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(options);
        options.Budgets.Validate();
        Directory.CreateDirectory(options.HomePath);
        var daemon = new PeerDaemon(Build(identity, options));
        try
        {
            await daemon._host.StartAsync(cancellationToken);
            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
    }

    /// <summary>What the daemon is doing now.</summary>
    public StatusReply Status() => Services.GetRequiredService<DaemonStatus>().Build(Endpoints);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _host.StopAsync(CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_host is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync();
        }
        else
        {
            _host.Dispose();
        }
    }

    private static IHost Build(PeerIdentity identity, PeerDaemonOptions options)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = options.HomePath, DisableDefaults = true });
        builder.Logging.AddDaemonLogging(options.HomePath, options.LoggerFactory);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        var services = builder.Services;
        services.AddSingleton(identity);
        services.AddSingleton(options);
        services.AddSingleton(options.Budgets);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<DaemonCertificate>();
        services.AddSingleton(_ => new LocalStore(Path.Combine(options.HomePath, "store.db")));
        services.AddSingleton<PeerBudgets>();
        services.AddSingleton<InProcessListener>();
        services.AddSingleton(sp => new SupernodeConnection(
            identity,
            new SupernodeConnectionOptions { Seeds = options.Supernodes, DisplayName = options.DisplayName, WorkStampFile = Path.Combine(options.HomePath, "work.stamp") },
            sp.GetRequiredService<ILogger<SupernodeConnection>>()));
        services.AddSingleton(sp => new HolePunch(sp.GetRequiredService<SupernodeConnection>(), sp.GetRequiredService<InProcessListener>(), options.Private, sp.GetRequiredService<ILogger<HolePunch>>()));
        services.AddSingleton(sp => new PeerDialer(identity, sp.GetRequiredService<DaemonCertificate>().Certificate, sp.GetRequiredService<SupernodeConnection>(), options.Private, sp.GetRequiredService<ILogger<PeerDialer>>())
        {
            Punch = sp.GetRequiredService<HolePunch>(),
            PunchDelay = options.PunchDelay,
        });
        services.AddSingleton<Courier>();
        services.AddSingleton<ChatService>();
        services.AddSingleton<ListingLookups>();
        services.AddSingleton<ListingStock>();
        services.AddSingleton<OrderService>();
        services.AddSingleton<MailInbox>();
        services.AddSingleton(sp => new TransferService(sp.GetRequiredService<LocalStore>(), sp.GetRequiredService<PeerDialer>(), Path.Combine(options.HomePath, "downloads"), options.MaxUploadBytesPerSecond, sp.GetRequiredService<ILogger<TransferService>>()));
        services.AddSingleton<DaemonStatus>();

        // Started in this order, stopped in reverse: the peer host binds before the session announces
        // its endpoints; the control socket opens once everything it serves exists.
        services.AddSingleton<PeerHost>();
        services.AddHostedService(sp => sp.GetRequiredService<PeerHost>());
        services.AddSingleton<RelayBridge>();
        services.AddHostedService(sp => sp.GetRequiredService<RelayBridge>());
        services.AddHostedService<SupernodeSession>();
        services.AddHostedService<MailLoop>();
        services.AddSingleton<ControlHost>();
        services.AddHostedService(sp => sp.GetRequiredService<ControlHost>());
        return builder.Build();
    }
}
