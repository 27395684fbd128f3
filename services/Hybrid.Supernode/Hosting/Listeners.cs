using System.Security.Authentication;
using Hybrid.Protocol.Identity;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Federation;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Hybrid.Supernode.Hosting;

/// <summary>
/// The two named Kestrel endpoints: <c>Grpc</c> (public API, HTTP/2) and <c>Ops</c> (probes and
/// metrics, HTTP/1.1), and the federation listener when <c>Supernode:Federation:Listen</c> is set
/// (mutual TLS with other clusters). Connections on Ops and federation are tagged so each listener
/// serves only its own routes.
/// </summary>
public static class Listeners
{
    public const string GrpcEndpoint = "Grpc";
    public const string OpsEndpoint = "Ops";
    private const string OpsTag = "hybrid.listener.ops";
    private const string FederationTag = "hybrid.listener.federation";
    private const string FederationPath = "/hybrid.v1.FederationApi";

    /// <summary>Idle time on a connection before the supernode pings its client.</summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(10);

    /// <summary>How long an unanswered ping may wait before the connection is closed.</summary>
    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(10);

    private static readonly string[] OpsPaths = ["/healthz", "/readyz", "/metrics"];

    public static WebApplicationBuilder AddSupernodeListeners(this WebApplicationBuilder builder, SupernodeOptions options)
    {
        // A herd of peers dialling at once (their supernode just died) waits in the listen backlog
        // instead of being dropped and dialling again a second or more later.
        builder.WebHost.UseSockets(sockets => sockets.Backlog = options.ListenBacklog);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            // HTTP/2 pings find a peer whose network vanished without closing its connection, so
            // its session ends (and it shows offline) within seconds, without application
            // heartbeats, which cost a grain call each. Settings under Kestrel:Limits:Http2 win.
            var http2 = context.Configuration.GetSection("Kestrel:Limits:Http2");
            if (http2["KeepAlivePingDelay"] is null)
            {
                kestrel.Limits.Http2.KeepAlivePingDelay = KeepAlivePingDelay;
            }

            if (http2["KeepAlivePingTimeout"] is null)
            {
                kestrel.Limits.Http2.KeepAlivePingTimeout = KeepAlivePingTimeout;
            }

            if (kestrel.ApplicationServices.GetRequiredService<SupernodeOptions>().Federation.ListenEndPoint is { } federation)
            {
                var identity = kestrel.ApplicationServices.GetRequiredService<FederationIdentity>();
                kestrel.Listen(federation, listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = identity.Certificate,
                        ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                        // Any cluster may connect; who it is comes from its key (a P-256 key, self-signed).
                        ClientCertificateValidation = (presented, _, _) => PeerCertificates.TryGetPeerId(presented, out _),
                        CheckCertificateRevocation = false,
                        SslProtocols = SslProtocols.Tls13,
                    });
                    listen.Use(next => connection =>
                    {
                        connection.Items[FederationTag] = true;
                        return next(connection);
                    });
                });
            }

            kestrel.Configure(context.Configuration.GetSection("Kestrel"), reloadOnChange: false)
                .Endpoint(OpsEndpoint, endpoint => endpoint.ListenOptions.Use(next => connection =>
                {
                    connection.Items[OpsTag] = true;
                    return next(connection);
                }));
        });
        return builder;
    }

    /// <summary>Whether the request came in on the Ops listener.</summary>
    public static bool IsOps(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(OpsTag) == true;

    /// <summary>Whether the request came in on the federation listener (its caller presented a cluster key).</summary>
    public static bool IsFederation(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(FederationTag) == true;

    /// <summary>
    /// Ops routes answer only on Ops; the federation service only on the federation listener when
    /// there is one (else on Grpc); everything else only on Grpc.
    /// </summary>
    public static IApplicationBuilder UseListenerSeparation(this IApplicationBuilder app, bool federationListener) =>
        app.Use((context, next) =>
        {
            var opsPath = OpsPaths.Any(p => context.Request.Path.StartsWithSegments(p, StringComparison.Ordinal));
            var federationPath = context.Request.Path.StartsWithSegments(FederationPath, StringComparison.Ordinal);
            if (opsPath != IsOps(context) || IsFederation(context) != (federationListener && federationPath))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        });

    /// <summary>The URL of the Grpc endpoint as configured, used when no AdvertisedUrl is set.</summary>
    public static string? ConfiguredGrpcUrl(IConfiguration configuration) =>
        configuration[$"Kestrel:Endpoints:{GrpcEndpoint}:Url"];
}
