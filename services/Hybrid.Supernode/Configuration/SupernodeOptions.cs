using Hybrid.Protocol.Identity;
using System.Net;

namespace Hybrid.Supernode.Configuration;

/// <summary>
/// The <c>Supernode</c> configuration section (also <c>Supernode__X</c> in the environment and
/// <c>--Supernode:X=</c> on the command line). Redis present means cluster mode.
/// </summary>
public sealed class SupernodeOptions
{
    public const string SectionName = "Supernode";

    /// <summary>StackExchange.Redis connection string. Set: cluster mode. Empty: embedded single supernode.</summary>
    public string? Redis { get; set; }

    /// <summary>Where the embedded mode keeps its data (SQLite, WAL).</summary>
    public string DataDir { get; set; } = DefaultDataDir();

    /// <summary>Orleans cluster id: supernodes on one Redis with the same id form one index.</summary>
    public string ClusterId { get; set; } = "hybrid";

    /// <summary>Orleans service id: the identity of stored state; keep it across deployments.</summary>
    public string ServiceId { get; set; } = "hybrid";

    /// <summary>Silo-to-silo port (internal; never the public API).</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Orleans gateway port (internal; thin clients never use it).</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// The address other silos reach this one at: an IP, or a host name resolved at start (a
    /// compose service name). Defaults to the POD_IP environment variable, else loopback (one machine).
    /// </summary>
    public string? SiloAddress { get; set; }

    /// <summary>The public gRPC URL handed to clients. Defaults to the Grpc endpoint's URL.</summary>
    public string? AdvertisedUrl { get; set; }

    /// <summary>
    /// The gRPC URL other supernodes of the cluster use for this one (a relay to a peer whose session is
    /// here is forwarded to it). Defaults to the Grpc endpoint's URL, with a wildcard host replaced by the silo address.
    /// </summary>
    public string? InternalUrl { get; set; }

    /// <summary>
    /// How often clients send a heartbeat on their session. Each renews the peer's presence lease
    /// (a grain call), so it is the main cost of a held session; a dead connection is found sooner
    /// by HTTP/2 pings (see <see cref="Hosting.Listeners.KeepAlivePingDelay"/>).
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>No heartbeat for this long and the session ends: the peer is offline.</summary>
    public TimeSpan SessionTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>
    /// How long a peer's presence in the directory lasts unless the supernode holding its session
    /// renews it, which it does on a heartbeat once a third of the lease has passed: a held session
    /// costs a directory call that often, not one per heartbeat. A supernode killed outright is found
    /// sooner, by cluster membership: its peers show offline once its silo is declared dead.
    /// </summary>
    public TimeSpan PresenceLease { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>How long one dial-back (TCP connect and TLS handshake to an announced endpoint) may take.</summary>
    public TimeSpan DialBackTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Dial-back rounds one peer may cause per minute (each round dials its announced endpoints once).</summary>
    public int DialBackRoundsPerPeerPerMinute { get; set; } = 4;

    /// <summary>Dial-backs to one IP address per minute, whoever announces it: fresh keys cannot aim this supernode at one host.</summary>
    public int DialBacksPerAddressPerMinute { get; set; } = 12;

    /// <summary>Dial-backs in flight at once on this supernode; a round that finds no place is skipped (its endpoints stay candidates).</summary>
    public int DialBacksInFlight { get; set; } = 64;

    /// <summary>How long a new session stream may take to answer the challenge.</summary>
    public TimeSpan HelloTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Session handshakes (after the peer's hello: verification, its grain, the welcome) one supernode
    /// runs at once; more are refused at once with <c>Unavailable</c>, and the peer tries another
    /// supernode or backs off, instead of waiting past its timeout while work is done for it in vain.
    /// </summary>
    public int MaxHandshakesInProgress { get; set; } = 256;

    /// <summary>
    /// Connections the kernel keeps waiting for this supernode to accept them (the listen backlog;
    /// Linux caps it at <c>net.core.somaxconn</c>, 4096 by default). When a supernode dies, its peers
    /// all dial the survivors within a few milliseconds: with Kestrel's default of 512, the rest of
    /// their connections were dropped and each peer waited for its kernel to send again (1 s, 3 s,
    /// 7 s later), which is what held a herd back, not the survivors' work.
    /// </summary>
    public int ListenBacklog { get; set; } = 4096;

    /// <summary>
    /// Orleans liveness probe timeout: lower declares a crashed supernode dead sooner. 0.5 s brings
    /// failover p99 under 2 s but, on 2 busy cores, falsely declared live supernodes dead in the
    /// short chaos test (BENCHMARKS.md), so the default stays 1 s.
    /// </summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Missed probes before a silo is suspected.</summary>
    public int MissedProbesLimit { get; set; } = 2;

    /// <summary>
    /// How long the cluster may take to declare a stopped supernode dead, with room for the probes'
    /// own adaptation (twice the probe timeout, times the missed probes allowed): what a frozen
    /// supernode's fence and a session open waiting for a moved grain are both measured against.
    /// </summary>
    public TimeSpan FailureDetection => 2 * ProbeTimeout * MissedProbesLimit;

    /// <summary>
    /// Whether recent traffic on a connection vetoes suspicion of its silo. Off by default: with it
    /// on, a hung silo whose sockets stay open took about a minute to be declared dead.
    /// </summary>
    public bool ConnectionLivenessCheck { get; set; }

    /// <summary>
    /// How often each supernode reads the cluster's membership table (Orleans' 60 s by default):
    /// a supernode declared dead while it still runs learns it within this time and stops.
    /// </summary>
    public TimeSpan MembershipRefresh { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The largest gRPC message accepted, in bytes.</summary>
    public int MaxMessageBytes { get; set; } = 256 * 1024;

    /// <summary>Requests per second allowed per client address (IPv6: per /64), and per peer for calls made with a session.</summary>
    public int RequestsPerSecond { get; set; } = 50;

    /// <summary>Burst allowance on top of <see cref="RequestsPerSecond"/>.</summary>
    public int RequestBurst { get; set; } = 100;

    /// <summary>Session control messages (heartbeats, endpoint updates) per second per peer; a budget apart from calls.</summary>
    public int ControlMessagesPerSecond { get; set; } = 5;

    /// <summary>
    /// Reverse proxies or ingress controllers whose X-Forwarded-For header names the client, comma-separated
    /// addresses or CIDR networks. Empty: the socket's address is the client's, and the header is ignored.
    /// </summary>
    public string TrustedProxies { get; set; } = string.Empty;

    /// <summary>Live listings one seller may have in the cluster (enforced per shard, with slack for uneven spread).</summary>
    public int MaxListingsPerSeller { get; set; } = 1000;

    /// <summary>Bytes of live listings one seller may have in the cluster (enforced per shard, with slack).</summary>
    public long MaxListingBytesPerSeller { get; set; } = 4L * 1024 * 1024;

    /// <summary>Live listings the cluster holds in all: past it, new listings are refused until others expire.</summary>
    public long MaxListings { get; set; } = 2_000_000;

    /// <summary>Bytes of live listings the cluster holds in all (they are kept in memory by the search shards).</summary>
    public long MaxListingBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>The listing bounds one search shard enforces: the cluster's divided by the shard count.</summary>
    public Index.Listings.ListingQuotas ListingQuotasPerShard()
    {
        // A seller's listing ids hash uniformly over shards; a quarter of slack (and a few listings) keeps an
        // honest seller near its quota from being refused by one fuller shard.
        static long Share(long total, int shards, double slack) => (long)Math.Ceiling(total * slack / shards) + (slack > 1 ? 4 : 0);
        return new Index.Listings.ListingQuotas(
            (int)Math.Min(int.MaxValue, Share(MaxListingsPerSeller, SearchShards, 1.25)),
            Share(MaxListingBytesPerSeller, SearchShards, 1.25),
            (int)Math.Min(int.MaxValue, Share(MaxListings, SearchShards, 1.0)),
            Share(MaxListingBytes, SearchShards, 1.0));
    }

    /// <summary>Leading zero bits of the proof-of-work stamp a new identity needs (0: none; at most 26). 20 is about a second of one core.</summary>
    public int IdentityWorkBits { get; set; } = 20;

    /// <summary>New identities one client address (IPv6: one /64) may bring per hour.</summary>
    public int NewIdentitiesPerAddressPerHour { get; set; } = 10;

    /// <summary>New identities this supernode admits per minute, all addresses together.</summary>
    public int NewIdentitiesPerMinute { get; set; } = 120;

    /// <summary>
    /// Further URLs clients reach this supernode by, comma-separated (a load balancer, a Kubernetes
    /// Service, an ingress): a session proof must name the URL its peer dialed, and only this
    /// supernode's own URLs are accepted.
    /// </summary>
    public string PublicUrls { get; set; } = string.Empty;

    /// <summary>
    /// Behind a TLS-terminating proxy: the SHA-256 (hex or base64) of the SubjectPublicKeyInfo of each
    /// certificate the proxy presents, comma-separated. A session proof naming another TLS key is then
    /// refused; with none set, such a supernode cannot check the key (where it terminates TLS itself,
    /// it checks against its own certificate).
    /// </summary>
    public string PublicTlsKeys { get; set; } = string.Empty;

    /// <summary>
    /// Euros per unit of currencies, comma-separated ("USD=0.92,JPY=0.0062"), replacing or adding to
    /// the shipped table of rough rates that put order values in one unit for review weights. Every
    /// supernode of a cluster should use the same.
    /// </summary>
    public string ReferenceRates { get; set; } = string.Empty;

    /// <summary>The entries of <see cref="PublicTlsKeys"/>, parsed.</summary>
    public IReadOnlyList<byte[]> PublicTlsKeyList() => [.. PublicTlsKeys.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(k => TlsKeys.Parse(k) ?? [])];

    /// <summary>The entries of <see cref="PublicUrls"/>.</summary>
    public IEnumerable<string> PublicUrlList() => PublicUrls.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>New sessions per minute allowed per peer.</summary>
    public int SessionsPerMinute { get; set; } = 30;

    /// <summary>
    /// A file of extra search synonyms (one group per line, words separated by commas, # comments)
    /// that extends the shipped list; empty for the shipped list only.
    /// </summary>
    public string? SynonymsFile { get; set; }

    /// <summary>Number of search shards. Fixed for the life of a cluster's data: every supernode of a cluster must agree.</summary>
    public int SearchShards { get; set; } = 2;

    /// <summary>
    /// Whether each search shard keeps its Lucene index on disk (under <see cref="DataDir"/>/search),
    /// so that a restart indexes only what changed in the store since; off, every start indexes every listing again.
    /// </summary>
    public bool SearchIndexOnDisk { get; set; } = true;

    /// <summary>
    /// Whether a search shard with no writes for a sweep interval (30 s) folds its small Lucene
    /// segments into one: every query pays per segment, so fewer segments make searches cheaper.
    /// </summary>
    public bool SearchCompactWhenQuiet { get; set; } = true;

    /// <summary>
    /// Bytes of signed listings kept from recent search result pages, each served only for the version
    /// a shard just matched, so often-searched pages need no store read (0: none kept).
    /// </summary>
    public long SearchPageCacheBytes { get; set; } = 16L << 20;

    /// <summary>
    /// How long after its acknowledgement a published or withdrawn listing may take to show in search
    /// (0, the default: at once). Above zero, each search shard refreshes at most once per interval
    /// while it is written to, instead of after every write: searches under a steady stream of
    /// publishes keep more of their rate (BENCHMARKS.md, "Term look-ups kept per segment").
    /// </summary>
    public TimeSpan SearchRefreshInterval { get; set; } = TimeSpan.Zero;

    /// <summary>Relayed links a peer may hold at once on this supernode (as dialer or as target).</summary>
    public int RelayLinksPerPeer { get; set; } = 16;

    /// <summary>Relayed links one dialer may hold to one target at once (so no dialer takes all of a target's places).</summary>
    public int RelayLinksPerPair { get; set; } = 2;

    /// <summary>Relayed links this supernode carries at once, all peers together.</summary>
    public int RelayLinksTotal { get; set; } = 2048;

    /// <summary>Relayed bytes per second one peer may send (bursts of four seconds' worth); faster senders are slowed.</summary>
    public long RelayBytesPerPeerPerSecond { get; set; } = 64L * 1024 * 1024;

    /// <summary>Bytes one relayed link may carry (both directions) before the supernode cuts it.</summary>
    public long RelayBytesPerLink { get; set; } = 4L * 1024 * 1024 * 1024;

    /// <summary>
    /// TCP port where relayed links are spliced (plain TCP; the peers' TLS records only): 0 picks a free
    /// port, -1 turns it off (links then run in frames over the Relay call). The port is on the gRPC
    /// endpoint's address; expose it beside the gRPC port.
    /// </summary>
    public int RelayPort { get; set; }

    /// <summary>The relay port as peers reach it (behind a port mapping); 0 for the bound port.</summary>
    public int RelayAdvertisedPort { get; set; }

    /// <summary>How long both peers of a relayed link have to present their tokens on the relay port before the link runs in frames instead.</summary>
    public TimeSpan RelaySpliceWait { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long the target of a relay offer has to answer it.</summary>
    public TimeSpan RelayAnswerTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a sealed item waits in a mailbox for its offline recipient.</summary>
    public TimeSpan MailboxTimeToLive { get; set; } = TimeSpan.FromDays(14);

    /// <summary>Most items one mailbox holds.</summary>
    public int MailboxMaxItems { get; set; } = 1000;

    /// <summary>Most bytes one mailbox holds.</summary>
    public long MailboxMaxBytes { get; set; } = 4L * 1024 * 1024;

    /// <summary>Largest single sealed item, in bytes (a reply page of TakeMail always holds at least one).</summary>
    public int MailboxMaxItemBytes { get; set; } = 32 * 1024;

    /// <summary>Share of a mailbox's items and bytes one sender may hold in it at once (0-1).</summary>
    public double MailboxSenderShare { get; set; } = 0.25;

    /// <summary>Sealed bytes one sender may deposit per hour on this supernode, all recipients together.</summary>
    public long MailboxBytesPerSenderPerHour { get; set; } = 2L * 1024 * 1024;

    /// <summary>Sealed bytes this supernode accepts per hour from all senders together: the ceiling on mailbox growth.</summary>
    public long MailboxBytesPerHour { get; set; } = 512L * 1024 * 1024;

    /// <summary>Reviews and replies one identity may write per hour on this supernode.</summary>
    public int ReviewsPerIdentityPerHour { get; set; } = 30;

    /// <summary>PEM certificate of this supernode's silo, signed by the cluster CA. Set (with the key and CA): silo sockets require mutual TLS.</summary>
    public string? SiloCertificate { get; set; }

    /// <summary>PEM private key of <see cref="SiloCertificate"/> (may be omitted when the certificate file holds the key).</summary>
    public string? SiloKey { get; set; }

    /// <summary>PEM certificate of the cluster CA: only silos with certificates it issued may join.</summary>
    public string? SiloCa { get; set; }

    /// <summary>True when silo-to-silo TLS is configured.</summary>
    public bool HasSiloTls => !string.IsNullOrWhiteSpace(SiloCertificate);

    /// <summary>
    /// PeerIds the operators trust from the start, comma-separated: global trust enters the receipt
    /// graph only through them. Empty: trust starts spread over everyone (a ring of fake accounts can then gain).
    /// </summary>
    public string PreTrustedPeers { get; set; } = string.Empty;

    /// <summary>How often global trust is recomputed while reviews arrive.</summary>
    public TimeSpan TrustRecomputeInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Federation with other clusters.</summary>
    public FederationOptions Federation { get; set; } = new();

    /// <summary>The pre-trusted peers, parsed.</summary>
    public IReadOnlyList<string> PreTrusted => [.. PreTrustedPeers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>True when a Redis connection string is set.</summary>
    public bool IsCluster => !string.IsNullOrWhiteSpace(Redis);

    private static string DefaultDataDir() =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "hybrid", "supernode");

    /// <summary>The address to advertise to other silos.</summary>
    public IPAddress ResolveSiloAddress()
    {
        var text = SiloAddress ?? Environment.GetEnvironmentVariable("POD_IP");
        if (string.IsNullOrWhiteSpace(text))
        {
            return IPAddress.Loopback;
        }

        return IPAddress.TryParse(text, out var address)
            ? address
            : Dns.GetHostAddresses(text).OrderBy(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 0 : 1).First();
    }

    /// <summary>Every problem with these settings, one sentence each, naming the setting.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        CheckPort(errors, nameof(SiloPort), SiloPort);
        CheckPort(errors, nameof(GatewayPort), GatewayPort);
        if (SiloPort == GatewayPort)
        {
            errors.Add($"Supernode:SiloPort and Supernode:GatewayPort are both {SiloPort}; they must differ");
        }

        if (string.IsNullOrWhiteSpace(DataDir))
        {
            errors.Add("Supernode:DataDir is empty; give a directory the supernode may write to");
        }

        errors.AddRange(Federation.Validate());

        CheckName(errors, nameof(ClusterId), ClusterId);
        CheckName(errors, nameof(ServiceId), ServiceId);

        if (InternalUrl is { Length: > 0 } inner && (!Uri.TryCreate(inner, UriKind.Absolute, out var innerUri) || (innerUri.Scheme != Uri.UriSchemeHttp && innerUri.Scheme != Uri.UriSchemeHttps)))
        {
            errors.Add($"Supernode:InternalUrl '{inner}' is not an absolute http:// or https:// URL");
        }

        if (AdvertisedUrl is { Length: > 0 } url &&
            (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
        {
            errors.Add($"Supernode:AdvertisedUrl '{url}' is not an absolute http:// or https:// URL");
        }

        var silo = SiloAddress ?? Environment.GetEnvironmentVariable("POD_IP");
        if (!string.IsNullOrWhiteSpace(silo) && !IPAddress.TryParse(silo, out _) && !Resolves(silo))
        {
            errors.Add($"Supernode:SiloAddress '{silo}' is neither an IP address nor a host name that resolves");
        }

        if (IsCluster)
        {
            try
            {
                _ = StackExchange.Redis.ConfigurationOptions.Parse(Redis!);
            }
            catch (ArgumentException ex)
            {
                errors.Add($"Supernode:Redis is not a valid Redis connection string: {ex.Message}");
            }
        }

        if (HasSiloTls || !string.IsNullOrWhiteSpace(SiloCa) || !string.IsNullOrWhiteSpace(SiloKey))
        {
            CheckSiloTls(errors);
        }

        foreach (var peer in PreTrusted)
        {
            if (!Hybrid.Protocol.Identity.PeerId.TryParse(peer, out _, out var problem))
            {
                errors.Add($"Supernode:PreTrustedPeers has '{peer}': {problem}");
            }
        }

        CheckPositive(errors, nameof(TrustRecomputeInterval), TrustRecomputeInterval);
        CheckPositive(errors, nameof(HeartbeatInterval), HeartbeatInterval);
        CheckPositive(errors, nameof(HelloTimeout), HelloTimeout);
        if (ListenBacklog is < 1 or > 65535)
        {
            errors.Add($"Supernode:ListenBacklog must be between 1 and 65535 (got {ListenBacklog})");
        }

        if (MaxHandshakesInProgress < 1)
        {
            errors.Add("Supernode:MaxHandshakesInProgress must be at least 1");
        }
        CheckPositive(errors, nameof(DialBackTimeout), DialBackTimeout);
        if (DialBackRoundsPerPeerPerMinute < 1 || DialBacksPerAddressPerMinute < 1 || DialBacksInFlight < 1)
        {
            errors.Add("Supernode:DialBackRoundsPerPeerPerMinute, Supernode:DialBacksPerAddressPerMinute and Supernode:DialBacksInFlight must be at least 1");
        }
        CheckPositive(errors, nameof(ProbeTimeout), ProbeTimeout);
        CheckPositive(errors, nameof(MembershipRefresh), MembershipRefresh);
        if (SessionTimeout <= HeartbeatInterval)
        {
            errors.Add($"Supernode:SessionTimeout ({SessionTimeout}) must be longer than Supernode:HeartbeatInterval ({HeartbeatInterval})");
        }

        if (PresenceLease < SessionTimeout || PresenceLease < 2 * HeartbeatInterval)
        {
            // Renewed on the first heartbeat after a third of the lease: that heartbeat must come before the lease ends.
            errors.Add($"Supernode:PresenceLease ({PresenceLease}) must be at least Supernode:SessionTimeout ({SessionTimeout}) and twice Supernode:HeartbeatInterval ({HeartbeatInterval})");
        }

        if (MissedProbesLimit < 1)
        {
            errors.Add($"Supernode:MissedProbesLimit must be at least 1 (got {MissedProbesLimit})");
        }

        if (MaxMessageBytes is < 4096 or > 64 * 1024 * 1024)
        {
            errors.Add($"Supernode:MaxMessageBytes must be between 4096 and 67108864 (got {MaxMessageBytes})");
        }

        if (SearchPageCacheBytes is < 0 or > 1L << 30)
        {
            errors.Add($"Supernode:SearchPageCacheBytes must be between 0 (none kept) and 1073741824 (got {SearchPageCacheBytes})");
        }

        if (SearchRefreshInterval < TimeSpan.Zero || SearchRefreshInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Supernode:SearchRefreshInterval must be between 00:00:00 (each search sees every acknowledged write) and 00:01:00 (got {SearchRefreshInterval})");
        }

        if (SearchShards is < 1 or > 256)
        {
            errors.Add($"Supernode:SearchShards must be between 1 and 256 (got {SearchShards})");
        }

        if (RelayLinksPerPair < 1 || RelayLinksTotal < 1 || RelayBytesPerPeerPerSecond < 64 * 1024)
        {
            errors.Add("Supernode:RelayLinksPerPair and Supernode:RelayLinksTotal must be at least 1, Supernode:RelayBytesPerPeerPerSecond at least 64 KiB");
        }

        if (RelayLinksPerPeer < 1 || RelayBytesPerLink < 1024 * 1024 || MailboxMaxItems < 1 || MailboxMaxBytes < 64 * 1024)
        {
            errors.Add("Supernode:RelayLinksPerPeer and Supernode:MailboxMaxItems must be at least 1, Supernode:RelayBytesPerLink at least 1 MiB, Supernode:MailboxMaxBytes at least 64 KiB");
        }

        if (MailboxMaxItemBytes < 1024 || MailboxMaxItemBytes > MaxMessageBytes / 2 || MailboxSenderShare is <= 0 or > 1)
        {
            errors.Add($"Supernode:MailboxMaxItemBytes must be 1024 to half of MaxMessageBytes ({MaxMessageBytes / 2}) and Supernode:MailboxSenderShare in (0, 1]");
        }

        if (!string.IsNullOrWhiteSpace(SynonymsFile) && !File.Exists(SynonymsFile))
        {
            errors.Add($"Supernode:SynonymsFile names {SynonymsFile}, which does not exist");
        }

        if (RelayPort is < -1 or > 65535 || RelayAdvertisedPort is < 0 or > 65535 || RelaySpliceWait <= TimeSpan.Zero)
        {
            errors.Add("Supernode:RelayPort must be -1 (off), 0 (any free port) or a port; Supernode:RelayAdvertisedPort 0 or a port; Supernode:RelaySpliceWait positive");
        }

        if (RelayAnswerTimeout <= TimeSpan.Zero || MailboxTimeToLive <= TimeSpan.Zero)
        {
            errors.Add("Supernode:RelayAnswerTimeout and Supernode:MailboxTimeToLive must be positive");
        }

        if (MailboxBytesPerSenderPerHour < 64 * 1024 || MailboxBytesPerHour < MailboxBytesPerSenderPerHour || ReviewsPerIdentityPerHour < 1)
        {
            errors.Add("Supernode:MailboxBytesPerSenderPerHour must be at least 64 KiB, Supernode:MailboxBytesPerHour at least that, and Supernode:ReviewsPerIdentityPerHour at least 1");
        }

        foreach (var publicUrl in PublicUrlList().Where(u => Protocol.Api.SupernodeUrls.Canonical(u) is null))
        {
            errors.Add($"Supernode:PublicUrls: '{publicUrl}' is not an absolute http:// or https:// URL");
        }

        errors.AddRange(Hybrid.Index.Reputation.OrderValues.Check(ReferenceRates).Select(e => $"Supernode:ReferenceRates: {e}"));

        foreach (var key in PublicTlsKeys.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(k => TlsKeys.Parse(k) is null))
        {
            errors.Add($"Supernode:PublicTlsKeys: '{(key.Length > 80 ? key[..80] + "…" : key)}' is not a SHA-256 in hex or base64");
        }

        if (MaxListingsPerSeller < 1 || MaxListingBytesPerSeller < 64 * 1024 || MaxListings < 1 || MaxListingBytes < 1024 * 1024)
        {
            errors.Add("Supernode:MaxListingsPerSeller and Supernode:MaxListings must be at least 1, Supernode:MaxListingBytesPerSeller at least 64 KiB, Supernode:MaxListingBytes at least 1 MiB");
        }

        if (IdentityWorkBits is < 0 or > Protocol.Identity.WorkStamps.MaxBits || NewIdentitiesPerAddressPerHour < 1 || NewIdentitiesPerMinute < 1)
        {
            errors.Add($"Supernode:IdentityWorkBits must be 0-{Protocol.Identity.WorkStamps.MaxBits}, Supernode:NewIdentitiesPerAddressPerHour and Supernode:NewIdentitiesPerMinute at least 1");
        }

        try
        {
            _ = TrustedProxyNetworks();
        }
        catch (FormatException ex)
        {
            errors.Add($"Supernode:TrustedProxies: {ex.Message}");
        }

        if (RequestsPerSecond < 1 || RequestBurst < 1 || SessionsPerMinute < 1 || ControlMessagesPerSecond < 1)
        {
            errors.Add("Supernode:RequestsPerSecond, Supernode:RequestBurst, Supernode:SessionsPerMinute and Supernode:ControlMessagesPerSecond must be at least 1");
        }

        return errors;
    }

    /// <summary>The networks of <see cref="TrustedProxies"/> (a single address is a /32 or /128).</summary>
    /// <exception cref="FormatException">An entry is neither an address nor a CIDR network.</exception>
    public IReadOnlyList<System.Net.IPNetwork> TrustedProxyNetworks() =>
        [.. TrustedProxies.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(entry =>
            System.Net.IPNetwork.TryParse(entry, out var network) ? network
            : IPAddress.TryParse(entry, out var address) ? new System.Net.IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)
            : throw new FormatException($"'{entry}' is neither an IP address nor a CIDR network such as 10.0.0.0/8"))];

    private void CheckSiloTls(List<string> errors)
    {
        if (!HasSiloTls || string.IsNullOrWhiteSpace(SiloCa))
        {
            errors.Add("Supernode:SiloCertificate and Supernode:SiloCa go together (with Supernode:SiloKey unless the certificate file holds the key)");
            return;
        }

        foreach (var (name, path) in new[] { (nameof(SiloCertificate), SiloCertificate), (nameof(SiloKey), SiloKey), (nameof(SiloCa), SiloCa) })
        {
            if (!string.IsNullOrWhiteSpace(path) && !File.Exists(path))
            {
                errors.Add($"Supernode:{name} '{path}' does not exist");
                return;
            }
        }

        try
        {
            var (certificate, authority) = Cluster.SiloTls.Load(this);
            using (certificate)
            using (authority)
            {
                if (!certificate.HasPrivateKey)
                {
                    errors.Add("Supernode:SiloCertificate has no private key: give it in the same file or in Supernode:SiloKey");
                }
                else if (!Cluster.SiloTls.IssuedBy(certificate, authority))
                {
                    errors.Add("Supernode:SiloCertificate was not issued by Supernode:SiloCa: the other supernodes would refuse it");
                }
            }
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            errors.Add($"Supernode:SiloCertificate, SiloKey or SiloCa is not valid PEM: {ex.Message}");
        }
    }

    private static bool Resolves(string host)
    {
        try
        {
            return Uri.CheckHostName(host) == UriHostNameType.Dns && Dns.GetHostAddresses(host).Length > 0;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    private static void CheckPort(List<string> errors, string name, int port)
    {
        if (port is < 1 or > 65535)
        {
            errors.Add($"Supernode:{name} must be between 1 and 65535 (got {port})");
        }
    }

    private static void CheckName(List<string> errors, string name, string value)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Length > 64 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            errors.Add($"Supernode:{name} '{value}' must be 1-64 letters, digits, '-', '_' or '.'");
        }
    }

    private static void CheckPositive(List<string> errors, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"Supernode:{name} must be a positive time span such as 00:00:02 (got {value})");
        }
    }
}

/// <summary>The configuration cannot run; the message is the one line printed at start.</summary>
public sealed class SupernodeConfigurationException : Exception
{
    public SupernodeConfigurationException(string message)
        : base(message)
    {
    }

    public SupernodeConfigurationException()
    {
    }

    public SupernodeConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Reads and checks the <c>Supernode</c> section.</summary>
public static class SupernodeConfiguration
{
    /// <summary>Binds and validates; throws <see cref="SupernodeConfigurationException"/> with every problem in one line.</summary>
    public static SupernodeOptions Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new SupernodeOptions();
        try
        {
            configuration.GetSection(SupernodeOptions.SectionName).Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException ex)
        {
            throw new SupernodeConfigurationException(Describe(ex));
        }

        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new SupernodeConfigurationException(string.Join("; ", errors));
        }

        return options;
    }

    // The binder says "Failed to convert configuration value at 'Supernode:SiloPort' to type 'System.Int32'."
    // or lists unknown keys; both are already one readable sentence, without the inner stack.
    private static string Describe(InvalidOperationException ex) =>
        ex.Message.Replace(Environment.NewLine, " ", StringComparison.Ordinal).Trim();
}
