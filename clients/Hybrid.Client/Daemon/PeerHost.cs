using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Hybrid.Client.Chat;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Orders;
using Hybrid.Client.Transfers;
using Hybrid.Protocol.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Hosting;

namespace Hybrid.Client.Daemon;

/// <summary>
/// The peer host: Kestrel, HTTP/2 only, mutual TLS (TLS 1.3) with this peer's certificate, serving
/// the peer protocol to whoever's key signs the client certificate. On start it binds, works out the
/// endpoints to advertise, and hands them to the supernode session.
/// </summary>
public sealed class PeerHost(PeerDaemonOptions options, DaemonCertificate certificate, SupernodeConnection connection, InProcessListener inProcess, IServiceProvider root) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    /// <summary>The bound address.</summary>
    public IPEndPoint EndPoint { get; private set; } = new(IPAddress.Loopback, 0);

    /// <summary>The endpoints advertised to other peers (none in private mode).</summary>
    public IReadOnlyList<string> Endpoints { get; private set; } = [];

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var listen = ParseListen(options.Listen ?? (options.Private ? "127.0.0.1:0" : "0.0.0.0:0"));
        var builder = DaemonWebHosts.CreateBuilder(options.HomePath, root);
        void PeerTlsOnly(ListenOptions endpoint)
        {
            endpoint.Protocols = HttpProtocols.Http2;
            endpoint.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = certificate.Certificate,
                ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                // Any peer may connect; who it is comes from its key. Refusals are gRPC statuses the caller can read.
                ClientCertificateValidation = (presented, _, _) => PeerCertificates.TryGetPeerId(presented, out _),
                CheckCertificateRevocation = false,
                SslProtocols = SslProtocols.Tls13,
            });
        }

        // Connections handed in as streams (relayed links, punched sockets) get the same TLS and protocol.
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(inProcess);
        // Bound with port reuse: the session and hole punches leave from this port (PortReuse).
        builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = PortReuse.BindListener);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // A punched link runs TLS itself (pinned before the link is used) and HTTP/2 inside as
            // "http": the scheme says nothing about security here, the handshake does.
            kestrel.AllowAlternateSchemes = true;
            kestrel.Listen(listen, PeerTlsOnly);
            kestrel.Listen(inProcess.ListenEndPoint, PeerTlsOnly);
        });
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = PeerProtocol.MaxMessageBytes;
            grpc.MaxSendMessageSize = PeerProtocol.MaxMessageBytes;
            grpc.Interceptors.Add<PeerErrorInterceptor>();
        });
        builder.Services.Share<ChatService>(root);
        builder.Services.Share<OrderService>(root);
        builder.Services.Share<TransferService>(root);
        builder.Services.Share<PeerBudgets>(root);
        builder.Services.Share<HolePunch>(root);
        builder.Services.Share<PeerDialer>(root);
        _app = builder.Build();
        _app.MapGrpcService<PeerLinkService>();
        await _app.StartAsync(cancellationToken);

        var bound = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .Select(a => new Uri(a))
            .First(u => IPAddress.TryParse(u.Host.Trim('[', ']'), out _));
        EndPoint = new IPEndPoint(IPAddress.Parse(bound.Host.Trim('[', ']')), bound.Port);
        Endpoints = Advertised(EndPoint);
        connection.AdvertisedEndpoints = Endpoints;
        if (!options.Private && !IPAddress.IsLoopback(EndPoint.Address))
        {
            connection.LocalEndPoint = EndPoint;
        }
        NetworkChange.NetworkAddressChanged += OnNetworkChanged;
    }

    /// <summary>
    /// An address came or went (another Wi-Fi, a new lease): announce what this host can be reached
    /// at now, and the supernode dials it back again.
    /// </summary>
    private void OnNetworkChanged(object? sender, EventArgs e)
    {
        var now = Advertised(EndPoint);
        if (now.SequenceEqual(Endpoints))
        {
            return;
        }

        Endpoints = now;
        _ = connection.AnnounceEndpointsAsync(now, CancellationToken.None).ContinueWith(
            t => _ = t.Exception,
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted,
            TaskScheduler.Default);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        NetworkChange.NetworkAddressChanged -= OnNetworkChanged;
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
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

    private List<string> Advertised(IPEndPoint bound)
    {
        if (options.Private)
        {
            return [];
        }

        if (!string.IsNullOrWhiteSpace(options.Advertise))
        {
            return [options.Advertise.StartsWith("https://", StringComparison.OrdinalIgnoreCase) ? options.Advertise : "https://" + options.Advertise];
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
}

/// <summary>This peer's TLS certificate, made from its key for the daemon's lifetime.</summary>
public sealed class DaemonCertificate(PeerIdentity identity) : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(365);

    /// <summary>The certificate (self-signed by the peer key; peers pin the key, not a CA).</summary>
    public X509Certificate2 Certificate { get; } = identity.CreateCertificate(DateTimeOffset.UtcNow, Lifetime);

    /// <inheritdoc />
    public void Dispose() => Certificate.Dispose();
}
