using System.Net.Sockets;
using Hybrid.Client.Chat;
using Hybrid.Client.Orders;
using Hybrid.Client.Store;
using Hybrid.Client.Transfers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Hosting;

namespace Hybrid.Client.Daemon;

/// <summary>The control API on a Unix domain socket in the home, which only the owner can open.</summary>
public sealed class ControlHost(PeerDaemonOptions options, IServiceProvider root) : IHostedService, IAsyncDisposable
{
    /// <summary>File name of the control socket in the home directory.</summary>
    public const string SocketName = "control.sock";

    private WebApplication? _app;

    /// <summary>The socket's path.</summary>
    public string SocketPath => Path.Combine(options.HomePath, SocketName);

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        PrepareSocket();
        var socketPath = SocketPath;
        var builder = DaemonWebHosts.CreateBuilder(options.HomePath, root);
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
        builder.Services.Share<ChatService>(root);
        builder.Services.Share<OrderService>(root);
        builder.Services.Share<TransferService>(root);
        builder.Services.Share<LocalStore>(root);
        builder.Services.Share<DaemonStatus>(root);
        builder.Services.Share<PeerHost>(root);
        builder.Services.Share<Connectivity.PeerBudgets>(root);
        _app = builder.Build();
        _app.MapGrpcService<ControlService>();
        await _app.StartAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            File.Delete(SocketPath);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    /// <summary>A socket file left by a crashed daemon is removed; one that answers means another daemon runs for this home.</summary>
    private void PrepareSocket()
    {
        var path = SocketPath;
        if (!File.Exists(path))
        {
            return;
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new InvalidOperationException($"a daemon is already running for {options.HomePath}");
            }
            catch (SocketException)
            {
                // Nobody listens: a stale file from a daemon that did not stop cleanly.
            }
        }

        File.Delete(path);
    }
}
