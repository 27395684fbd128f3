using Microsoft.AspNetCore.Connections.Features;

namespace Hybrid.Supernode.Hosting;

/// <summary>
/// The two named Kestrel endpoints: <c>Grpc</c> (public API, HTTP/2) and <c>Ops</c> (probes and
/// metrics, HTTP/1.1). Connections on Ops are tagged so each listener serves only its own routes.
/// </summary>
public static class Listeners
{
    public const string GrpcEndpoint = "Grpc";
    public const string OpsEndpoint = "Ops";
    private const string OpsTag = "hybrid.listener.ops";

    /// <summary>Idle time on a connection before the supernode pings its client.</summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(10);

    /// <summary>How long an unanswered ping may wait before the connection is closed.</summary>
    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(10);

    private static readonly string[] OpsPaths = ["/healthz", "/readyz", "/metrics"];

    public static WebApplicationBuilder AddSupernodeListeners(this WebApplicationBuilder builder)
    {
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

    /// <summary>Ops routes answer only on Ops; everything else only on Grpc.</summary>
    public static IApplicationBuilder UseListenerSeparation(this IApplicationBuilder app) =>
        app.Use((context, next) =>
        {
            var opsPath = OpsPaths.Any(p => context.Request.Path.StartsWithSegments(p, StringComparison.Ordinal));
            if (opsPath != IsOps(context))
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
