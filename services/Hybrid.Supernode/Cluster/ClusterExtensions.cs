using Hybrid.Index;
using Hybrid.Index.Listings;
using Hybrid.Index.Reputation;
using Hybrid.Index.Search;
using Hybrid.Index.Storage;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Storage;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Storage;
using StackExchange.Redis;

namespace Hybrid.Supernode.Cluster;

/// <summary>The Orleans silo inside the supernode: embedded (SQLite) or a Redis cluster.</summary>
public static class ClusterExtensions
{
    public static WebApplicationBuilder AddSupernodeCluster(this WebApplicationBuilder builder, SupernodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.DataDir);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.Configure<SearchOptions>(o =>
        {
            o.Shards = options.SearchShards;
            o.IndexDirectory = options.SearchIndexOnDisk ? Path.Combine(options.DataDir, "search") : null;
            o.CompactWhenQuiet = options.SearchCompactWhenQuiet;
            o.PageCacheBytes = options.SearchPageCacheBytes;
            o.RefreshInterval = options.SearchRefreshInterval;
        });
        builder.Services.AddSingleton<ShardedSearch>();
        // Search words' synonyms: the shipped list, extended by the operator's file if one is set.
        builder.Services.AddSingleton(_ => Hybrid.Index.Search.Synonyms.WithFile(options.SynonymsFile));
        builder.Services.AddSingleton(options.ListingQuotasPerShard());
        builder.Services.Configure<TrustOptions>(o =>
        {
            o.PreTrusted = [.. options.PreTrusted.Select(p => Hybrid.Protocol.Identity.PeerId.Parse(p).ToString())];
            o.RecomputeInterval = options.TrustRecomputeInterval;
        });
        builder.Services.AddSingleton<TrustRanking>();
        builder.Services.AddSingleton<IRankingSignal>(sp => sp.GetRequiredService<TrustRanking>());

        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ServiceId;
            });
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = options.ProbeTimeout;
                o.NumMissedProbesLimit = options.MissedProbesLimit;
                o.EnableConnectionLivenessCheck = options.ConnectionLivenessCheck;
                // A silo declared dead while it still runs (falsely suspected under load) learns it from
                // the table within this time and stops, instead of serving its stale grain copies for a minute.
                o.TableRefreshTimeout = options.MembershipRefresh;
            });

            SiloTls.Configure(silo, options);
            if (options.IsCluster)
            {
                var redis = ConfigurationOptions.Parse(options.Redis!);
                // Keep retrying a Redis that is briefly away instead of failing the silo at start.
                redis.AbortOnConnectFail = false;
                silo.UseRedisClustering(o => o.ConfigurationOptions = redis);
                silo.AddRedisGrainStorage(IndexStorage.ProviderName, o => o.ConfigurationOptions = redis);
                silo.Services.AddOptions<Orleans.Persistence.RedisStorageOptions>(IndexStorage.ProviderName)
                    .Configure<Serializer>((o, serializer) => o.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer));
                silo.Services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(redis));
                silo.Services.AddSingleton<IListingStore>(sp => new RedisListingStore(sp.GetRequiredService<IConnectionMultiplexer>(), options.ServiceId));
                silo.Services.AddSingleton<IItemStore>(sp => new RedisItemStore(sp.GetRequiredService<IConnectionMultiplexer>(), options.ServiceId));
                var address = options.ResolveSiloAddress();
                // Bound to the silo address only: silo and gateway ports are never on a public interface by accident.
                silo.ConfigureEndpoints(address, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false);
            }
            else
            {
                silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: options.ServiceId, clusterId: options.ClusterId);
                var databasePath = Path.Combine(options.DataDir, "index.db");
                silo.Services.AddSingleton(_ => new SqliteDatabase(databasePath));
                silo.Services.AddKeyedSingleton<IGrainStorage>(IndexStorage.ProviderName, (sp, _) =>
                    new SqliteGrainStorage(sp.GetRequiredService<SqliteDatabase>(), new OrleansGrainStorageSerializer(sp.GetRequiredService<Serializer>())));
                silo.Services.AddSingleton<IListingStore>(sp => new SqliteListingStore(sp.GetRequiredService<SqliteDatabase>()));
                silo.Services.AddSingleton<IItemStore>(sp => new SqliteItemStore(sp.GetRequiredService<SqliteDatabase>()));
            }
        });

        // Registered after the silo so that it starts once the silo has joined.
        builder.Services.AddSingleton<SupernodeRegistration>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SupernodeRegistration>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TrustRanking>());
        builder.Services.AddSingleton<PauseFence>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PauseFence>());
        builder.Services.AddSingleton<Sessions.PresenceRenewal>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Sessions.PresenceRenewal>());
        return builder;
    }
}
