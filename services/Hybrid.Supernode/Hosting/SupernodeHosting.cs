using Hybrid.Supernode.Api;
using Hybrid.Supernode.Cluster;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using Hybrid.Supernode.Sessions;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.HttpOverrides;
using Prometheus;

namespace Hybrid.Supernode.Hosting;

/// <summary>Registers and maps the public API and the operations endpoints.</summary>
public static class SupernodeHosting
{
    public static WebApplicationBuilder AddSupernodeApi(this WebApplicationBuilder builder, SupernodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        // Built-in meters are exported, except those recorded on every grain call or buffer by
        // machinery operators do not tune (Orleans' retry pipeline, its directory look-ups and
        // message dispatch counts, Kestrel's memory pool) and QUIC, which no listener uses: each
        // measurement costs a label look-up, and a session or a search records several of them.
        // The search stages take from a tenth of a millisecond up, below the adapter's default first bucket (10 ms).
        Prometheus.Metrics.ConfigureMeterAdapter(o =>
        {
            o.InstrumentFilterPredicate = instrument => !IsUnexported(instrument.Meter.Name, instrument.Name);
            o.ResolveHistogramBuckets = instrument => instrument.Meter.Name == Hybrid.Index.IndexMeters.Name && instrument.Name == Hybrid.Index.IndexMeters.SearchStageSecondsName
                ? SearchStageBuckets
                : Prometheus.MeterAdapterOptions.DefaultHistogramBuckets;
        });
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = options.MaxMessageBytes;
            o.MaxSendMessageSize = options.MaxMessageBytes;
            o.EnableDetailedErrors = false;
            o.Interceptors.Add<StatusMappingInterceptor>();
        });
        builder.Services.AddReadableRequests();
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks()
            .AddCheck<ClusterReadinessCheck>("cluster", tags: [ClusterReadinessCheck.ReadyTag]);
        builder.Services.Configure<ForwardedHeadersOptions>(o =>
        {
            // Only the operator's own proxies may say who the client is; by default nobody may.
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var network in options.TrustedProxyNetworks())
            {
                o.KnownIPNetworks.Add(network);
            }

            o.ForwardLimit = 1;
        });
        builder.Services.AddSingleton<SupernodeMetrics>();
        builder.Services.AddSingleton<SchedulingDelay>();
        builder.Services.AddSingleton<RequestLimits>();
        builder.Services.AddSingleton<IdentityAdmission>();
        builder.Services.AddSingleton<ReplyPages>();
        builder.Services.AddSingleton(new Hybrid.Index.Reputation.OrderValues(options.ReferenceRates));
        builder.Services.AddSingleton<SessionHub>();
        builder.Services.AddSingleton<SessionHost>();
        builder.Services.AddSingleton<DialBack>();
        builder.Services.AddSingleton<Relay.RelayHub>();
        builder.Services.AddSingleton<Relay.RelayForwarding>();
        builder.Services.AddSingleton<Relay.RelayDialer>();
        builder.Services.AddSingleton<Relay.RelayPort>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Relay.RelayPort>());
        builder.Services.AddSingleton<Federation.FederationIdentity>();
        builder.Services.AddSingleton<Federation.FederationPeers>();
        builder.Services.AddSingleton<Federation.FederatedLookup>();
        builder.Services.AddSingleton<Federation.LocalListings>();
        builder.Services.AddSingleton<Federation.LocalReviews>();
        builder.Services.AddSingleton<ReviewIntake>();
        builder.Services.AddSingleton<MailIntake>();
        builder.Services.AddSingleton<Federation.FederationPuller>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Federation.FederationPuller>());
        // Sessions are long-lived streams: give them time to hear "draining" and move before Kestrel cuts them.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        return builder;
    }

    private static readonly double[] SearchStageBuckets = Prometheus.Histogram.ExponentialBuckets(0.0001, 2, 16);

    internal static bool IsUnexported(string meter, string instrument) =>
        meter.StartsWith("Polly", StringComparison.Ordinal)
        || meter.Contains("System.Net.Quic", StringComparison.Ordinal)
        || meter == "Microsoft.AspNetCore.MemoryPool"
        || instrument.StartsWith("orleans-directory-lookups-", StringComparison.Ordinal)
        || instrument.StartsWith("orleans-messaging-processing-", StringComparison.Ordinal)
        || instrument == "orleans-messaging-sent-local";

    public static WebApplication MapSupernodeEndpoints(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseForwardedHeaders();
        app.UseListenerSeparation(federationListener: app.Services.GetRequiredService<SupernodeOptions>().Federation.ListenEndPoint is not null);
        app.MapGrpcService<DirectoryService>();
        app.MapGrpcService<ListingsService>();
        app.MapGrpcService<RelayService>();
        app.MapGrpcService<MailboxService>();
        app.MapGrpcService<ReputationService>();
        app.MapGrpcService<Federation.FederationService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ClusterReadinessCheck.ReadyTag) });
        app.MapMetrics("/metrics");
        // Created now so the series exist (at zero) from the first scrape.
        _ = app.Services.GetRequiredService<SupernodeMetrics>();
        _ = app.Services.GetRequiredService<SchedulingDelay>();

        // ApplicationStopping runs before Kestrel stops: peers hear "draining" while the stream still works.
        // Both are resolved now: a host that stops because a background service failed may already
        // have disposed its services when the stopping callbacks run.
        var registration = app.Services.GetRequiredService<SupernodeRegistration>();
        var sessions = app.Services.GetRequiredService<SessionHub>();
        app.Lifetime.ApplicationStopping.Register(() => DrainSessionsAsync(registration, sessions).GetAwaiter().GetResult());
        return app;
    }

    private static async Task DrainSessionsAsync(SupernodeRegistration registration, SessionHub sessions)
    {
        IReadOnlyList<string> others = [];
        try
        {
            var live = await registration.LiveSupernodesAsync().WaitAsync(TimeSpan.FromSeconds(2));
            others = [.. live.Select(s => s.Url).Where(url => url != registration.AdvertisedUrl)];
        }
        catch (Exception ex) when (ex is TimeoutException or OrleansException)
        {
            // Peers still know the list they learned at connect; the notice just carries none.
        }

        sessions.Drain(others);
    }
}
