using Hybrid.Index.Search;
using Hybrid.Index.Supernodes;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Hosting;

using Hybrid.Protocol.Api;

namespace Hybrid.Supernode.Cluster;

/// <summary>
/// Puts this supernode's advertised URL into the cluster's registry and keeps it there; answers
/// which supernodes are live (registry filtered by the membership this silo sees).
/// </summary>
public sealed partial class SupernodeRegistration(
    IGrainFactory grains,
    ShardedSearch search,
    ILocalSiloDetails silo,
    IClusterMembershipService membership,
    SupernodeOptions options,
    IConfiguration configuration,
    TimeProvider time,
    ILogger<SupernodeRegistration> logger) : BackgroundService
{
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan RetryInterval = TimeSpan.FromMilliseconds(500);
    private volatile bool _registered;
    private volatile bool _searchReady;

    /// <summary>The public gRPC URL of this supernode.</summary>
    public string AdvertisedUrl { get; } = ResolveAdvertisedUrl(options, configuration);

    /// <summary>The gRPC URL the other supernodes use for this one (forwarded relays).</summary>
    public string InternalUrl { get; } = ResolveInternalUrl(options, configuration);

    private static readonly string[] WildcardHosts = ["://0.0.0.0", "://*", "://+", "://[::]"];

    private readonly Lazy<HashSet<string>> _ownUrls = new(() => OwnUrls(options, configuration, ResolveAdvertisedUrl(options, configuration), ResolveInternalUrl(options, configuration)));

    /// <summary>The silo's address, for the cluster's own registry: never handed to clients.</summary>
    public string SiloName => silo.SiloAddress.ToParsableString();

    /// <summary>
    /// A stable id for this supernode's process, sent with session challenges: a hash of the silo,
    /// so clients learn nothing of the cluster's internal addresses.
    /// </summary>
    public string SupernodeId => _supernodeId ??= "sn-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(SiloName)), 0, 12);

    private string? _supernodeId;

    /// <summary>Whether the silo is active, this supernode is in the registry and every search shard answers.</summary>
    public bool IsReady => _registered && _searchReady && membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress) == SiloStatus.Active;

    /// <summary>The live supernodes' records, oldest first.</summary>
    public async Task<IReadOnlyList<SupernodeRecord>> LiveSupernodesAsync()
    {
        var live = LiveSilos();
        var all = await RegistryAsync();
        return [.. all.Where(s => live.Contains(s.Silo))];
    }

    /// <summary>
    /// The registry's records, read from its grain at most once per <see cref="RegistryCacheTime"/>:
    /// every session open asks for the list, and the registry is one grain for the whole cluster.
    /// Who is live is still decided from membership on every call.
    /// </summary>
    private Task<System.Collections.Immutable.ImmutableArray<SupernodeRecord>> RegistryAsync()
    {
        var cached = _registry;
        var now = time.GetUtcNow();
        if (cached is not null && cached.Expires > now && !cached.Records.IsFaulted && !cached.Records.IsCanceled)
        {
            return cached.Records;
        }

        var fresh = new CachedRegistry(grains.GetGrain<ISupernodeRegistryGrain>(0).List(), now + RegistryCacheTime);
        _registry = fresh;
        return fresh.Records;
    }

    private static readonly TimeSpan RegistryCacheTime = TimeSpan.FromSeconds(1);
    private volatile CachedRegistry? _registry;

    private sealed record CachedRegistry(Task<System.Collections.Immutable.ImmutableArray<SupernodeRecord>> Records, DateTimeOffset Expires);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.IsCluster && string.IsNullOrEmpty(StackExchange.Redis.ConfigurationOptions.Parse(options.Redis!).Password))
        {
            LogRedisWithoutPassword(logger);
        }

        var record = new SupernodeRecord(SiloName, AdvertisedUrl, time.GetUtcNow(), InternalUrl);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await grains.GetGrain<ISupernodeRegistryGrain>(0).Register(record, LiveSilos());
                if (!_registered)
                {
                    LogRegistered(logger, AdvertisedUrl, SupernodeId);
                }

                _registered = true;
                if (!_searchReady)
                {
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    var listings = await search.WarmUpAsync();
                    _searchReady = true;
                    LogSearchReady(logger, search.ShardCount, listings, clock.ElapsedMilliseconds);
                }

                await Task.Delay(RefreshInterval, time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException or InvalidOperationException or StackExchange.Redis.RedisException or Microsoft.Data.Sqlite.SqliteException)
            {
                LogRegistrationFailed(logger, ex.Message);
                await Task.Delay(RetryInterval, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private HashSet<string> LiveSilos() =>
        [.. membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress.ToParsableString())];

    /// <summary>
    /// Whether a peer that dialed <paramref name="dialed"/> reached this supernode: its advertised and
    /// internal URLs, the operator's <c>Supernode:PublicUrls</c> (a load balancer, an ingress), and,
    /// when the API listens on every interface, this machine's own addresses and name on that port.
    /// A session proof naming any other URL was made for another server and is refused.
    /// </summary>
    public bool IsOwnUrl(string dialed) => SupernodeUrls.Canonical(dialed) is { } canonical && _ownUrls.Value.Contains(canonical);

    private static HashSet<string> OwnUrls(SupernodeOptions options, IConfiguration configuration, string advertised, string internalUrl)
    {
        var urls = new HashSet<string>(StringComparer.Ordinal);
        foreach (var url in options.PublicUrlList().Append(advertised).Append(internalUrl))
        {
            if (SupernodeUrls.Canonical(url) is { } canonical)
            {
                urls.Add(canonical);
            }
        }

        var listen = Listeners.ConfiguredGrpcUrl(configuration);
        if (listen is not null && WildcardHosts.Any(w => listen.Contains(w, StringComparison.Ordinal)))
        {
            var scheme = listen.StartsWith("https", StringComparison.OrdinalIgnoreCase) ? "https" : "http";
            var port = listen[(listen.LastIndexOf(':') + 1)..].TrimEnd('/');
            var hosts = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(n => n.GetIPProperties().UnicastAddresses)
                .Select(a => a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{a.Address}]" : a.Address.ToString())
                .Append(System.Net.Dns.GetHostName())
                .Append("localhost");
            foreach (var host in hosts)
            {
                if (SupernodeUrls.Canonical($"{scheme}://{host}:{port}") is { } canonical)
                {
                    urls.Add(canonical);
                }
            }
        }

        return urls;
    }

    private static string ResolveAdvertisedUrl(SupernodeOptions options, IConfiguration configuration)
    {
        if (!string.IsNullOrWhiteSpace(options.AdvertisedUrl))
        {
            return options.AdvertisedUrl.TrimEnd('/');
        }

        var url = Listeners.ConfiguredGrpcUrl(configuration) ?? "http://127.0.0.1:5000";
        // A wildcard listen address is not something a client can dial: name this machine instead.
        foreach (var wildcard in WildcardHosts)
        {
            url = url.Replace(wildcard, "://" + System.Net.Dns.GetHostName(), StringComparison.Ordinal);
        }

        return url.TrimEnd('/');
    }

    private static string ResolveInternalUrl(SupernodeOptions options, IConfiguration configuration)
    {
        if (!string.IsNullOrWhiteSpace(options.InternalUrl))
        {
            return options.InternalUrl.TrimEnd('/');
        }

        var url = Listeners.ConfiguredGrpcUrl(configuration) ?? "http://127.0.0.1:5000";
        // Listening on every interface: the other silos reach this one at its silo address.
        var silo = options.IsCluster ? options.ResolveSiloAddress().ToString() : "127.0.0.1";
        foreach (var wildcard in WildcardHosts)
        {
            url = url.Replace(wildcard, "://" + (silo.Contains(':', StringComparison.Ordinal) ? $"[{silo}]" : silo), StringComparison.Ordinal);
        }

        return url.TrimEnd('/');
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Supernode registered in the cluster as {Url} (silo {Silo})")]
    private static partial void LogRegistered(ILogger logger, string url, string silo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Supernode:Redis has no password: anything that can reach this Redis can add silos to the cluster or mark real ones dead. Set requirepass on Redis and password=... in Supernode:Redis.")]
    private static partial void LogRedisWithoutPassword(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Search ready: {Shards} shards answer with {Listings} listings after {Milliseconds} ms")]
    private static partial void LogSearchReady(ILogger logger, int shards, int listings, long milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Supernode registration failed, retrying: {Reason}")]
    private static partial void LogRegistrationFailed(ILogger logger, string reason);
}
