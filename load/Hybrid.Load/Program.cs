using System.CommandLine;
using System.Globalization;
using Hybrid.Load;

var runs = new Option<int>("--runs") { Description = "Repetitions (each kills and replaces one supernode, or starts one).", DefaultValueFactory = _ => 5 };
var peers = new Option<int>("--peers") { Description = "Peers in session on the supernode that is killed.", DefaultValueFactory = _ => 20 };
var settings = new Option<string[]>("--set") { Description = "Supernode setting for every supernode of the run, as KEY=VALUE (e.g. MissedProbesLimit=2); repeatable.", DefaultValueFactory = _ => [] };
var report = new Option<string>("--report") { Description = "Folder for the JSON and Markdown reports.", DefaultValueFactory = _ => "artifacts/bench" };

var failover = new Command("failover", "Kill -9 the supernode holding many sessions; time until each peer is back in session elsewhere, and until lookups show it again.")
{
    runs, peers, settings, report,
};
failover.SetAction((parse, ct) => FailoverScenario.RunAsync(parse.GetValue(runs), parse.GetValue(peers), parse.GetValue(settings)!, parse.GetValue(report)!, ct));

var seed = new Option<string>("--seed") { Description = "Supernode gRPC URL the peers open their sessions on.", Required = true };
var failoverPeers = new Command("failover-peers", "The failover scenario's peers in a runner process of their own (started by `failover`; reports on standard output).")
{
    seed, peers,
};
failoverPeers.Hidden = true;
failoverPeers.SetAction((parse, ct) => FailoverPeers.RunPeersAsync(parse.GetValue(seed)!, parse.GetValue(peers), ct));

var startup = new Command("startup", "Time from process start to /readyz, embedded and joining a Redis cluster.")
{
    runs, report,
};
startup.SetAction((parse, ct) => StartupScenario.RunAsync(parse.GetValue(runs), parse.GetValue(report)!, ct));

var listings = new Option<int>("--listings") { Description = "Listings in the run.", DefaultValueFactory = _ => 100_000 };
var shards = new Option<int>("--shards") { Description = "Search shards of the supernode.", DefaultValueFactory = _ => 2 };
var workers = new Option<int>("--workers") { Description = "Requests in flight (closed model).", DefaultValueFactory = _ => 8 };
var seconds = new Option<int>("--seconds") { Description = "Length of each measured phase.", DefaultValueFactory = _ => 20 };

var target = new Option<string?>("--target") { Description = "Supernode gRPC URL of a running network (default: start a supernode on loopback)." };
var inMemory = new Option<bool>("--index-in-memory") { Description = "Keep the search index in memory only (supernode and baseline), as before it was kept on disk." };
var search = new Command("search", "Search at scale on one embedded supernode, against the same queries on one in-process Lucene index (or, with --target, on a running network against its no-op call).")
{
    listings, shards, workers, seconds, report, target, inMemory, settings,
};
search.SetAction((parse, ct) => parse.GetValue(target) is { } url
    ? SearchScenario.RunAgainstAsync(url, parse.GetValue(workers), TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(report)!, ct)
    : SearchScenario.RunAsync(parse.GetValue(listings), parse.GetValue(shards), parse.GetValue(workers), TimeSpan.FromSeconds(parse.GetValue(seconds)), !parse.GetValue(inMemory), parse.GetValue(settings)!, parse.GetValue(report)!, ct));

var adds = new Option<int>("--adds") { Description = "New listings a second added while searched.", DefaultValueFactory = _ => 20 };
var index = new Command("index", "The search index alone (one in-process Lucene index, as a shard keeps it): searches a second without writes, and while new listings are added at a trickle.")
{
    listings, workers, seconds, adds, report,
};
index.SetAction((parse, ct) => IndexScenario.RunAsync(parse.GetValue(listings), parse.GetValue(workers), TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(adds), parse.GetValue(report)!, ct));

var publish = new Command("publish", "Publish throughput through one embedded supernode, against in-process signature verification.")
{
    listings, workers, shards, report,
};
publish.SetAction((parse, ct) => PublishScenario.RunAsync(parse.GetValue(listings), parse.GetValue(workers), parse.GetValue(shards), parse.GetValue(report)!, ct));

var restart = new Command("cluster-restart", "Three supernodes with many listings in Redis: start to search-ready, kill -9 all, restart, same answers.")
{
    listings, shards, report,
};
restart.SetAction((parse, ct) => ClusterRestartScenario.RunAsync(parse.GetValue(listings), parse.GetValue(shards), parse.GetValue(report)!, ct));

var peersToConnect = new Option<int>("--peers") { Description = "Peers that open and hold a session.", DefaultValueFactory = _ => 1000 };
var concurrency = new Option<int>("--concurrency") { Description = "Sessions being opened at once.", DefaultValueFactory = _ => 32 };
var peersPerConnection = new Option<int>("--peers-per-connection") { Description = "Peers sharing one HTTP/2 connection (1: each dials its own, as thin clients do).", DefaultValueFactory = _ => 1 };
var supernodeCount = new Option<int>("--supernodes") { Description = "Supernodes (more than one: a cluster on Redis, each peer's seed list starting at a different one).", DefaultValueFactory = _ => 1 };
var connect = new Command("connect", "Sessions opened per second and sessions held on one embedded supernode, a cluster (--supernodes) or --target, against a no-op gRPC call and P-256 verifications.")
{
    peersToConnect, concurrency, peersPerConnection, supernodeCount, seconds, report, target,
};
supernodeCount.Validators.Add(result =>
{
    if (result.GetValueOrDefault<int>() is < 1 or > 8)
    {
        result.AddError("--supernodes must be 1-8");
    }
});
peersPerConnection.Validators.Add(result =>
{
    if (result.GetValueOrDefault<int>() < 1)
    {
        result.AddError("--peers-per-connection must be at least 1");
    }
});
connect.SetAction((parse, ct) => ConnectScenario.RunAsync(parse.GetValue(peersToConnect), parse.GetValue(concurrency), parse.GetValue(peersPerConnection), parse.GetValue(supernodeCount), TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(target), parse.GetValue(report)!, ct));

var floorConnections = new Option<int>("--connections") { Description = "Connections of each kind held at once.", DefaultValueFactory = _ => 2000 };
var floorConcurrency = new Option<int>("--concurrency") { Description = "Connections being opened at once.", DefaultValueFactory = _ => 64 };
var connectionFloor = new Command("connection-floor", "What a held connection costs a bare Kestrel server (live heap, CPU to open): HTTP/2, as every supernode session runs on, against a WebSocket over HTTP/1.1.")
{
    floorConnections, floorConcurrency, report,
};
connectionFloor.SetAction((parse, ct) => ConnectionFloorScenario.RunAsync(parse.GetValue(floorConnections), parse.GetValue(floorConcurrency), parse.GetValue(report)!, ct));
var connectionFloorServer = new Command("connection-floor-server", "The bare Kestrel server of `connection-floor` in a process of its own (started by it; driven over standard input).");
connectionFloorServer.Hidden = true;
connectionFloorServer.SetAction((_, ct) => ConnectionFloorScenario.ServeAsync(ct));

var sizeMb = new Option<int>("--size-mb") { Description = "Size of the goods data fetched.", DefaultValueFactory = _ => 512 };
var fetches = new Option<int>("--runs") { Description = "Fetches per path.", DefaultValueFactory = _ => 3 };
var chats = new Option<int>("--chats") { Description = "Chat messages timed per path.", DefaultValueFactory = _ => 300 };
var transfer = new Command("transfer", "Goods data MB/s between two daemons, direct and relayed, beside a raw loopback TCP copy; chat round trips direct and relayed.")
{
    sizeMb, fetches, chats, report,
};
transfer.SetAction((parse, ct) => TransferScenario.RunAsync(parse.GetValue(sizeMb), parse.GetValue(fetches), parse.GetValue(chats), parse.GetValue(report)!, ct));

var connections = new Option<int>("--connections") { Description = "Client connections (channels).", DefaultValueFactory = _ => 4 };
var inFlight = new Option<int>("--workers") { Description = "Calls in flight (closed model).", DefaultValueFactory = _ => 64 };
var noop = new Command("noop", "The baseline: a no-op gRPC call, closed and open model, beside h2load driving the same call.")
{
    target, connections, inFlight, seconds, report,
};
noop.SetAction((parse, ct) => NoopScenario.RunAsync(parse.GetValue(target), parse.GetValue(connections), parse.GetValue(inFlight), TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(report)!, ct));

var trustPeers = new Option<int>("--peers") { Description = "Peers in the receipt graph.", DefaultValueFactory = _ => 100_000 };
var receipts = new Option<int>("--receipts") { Description = "Completed orders reviewed.", DefaultValueFactory = _ => 1_000_000 };
var trust = new Command("trust", "Global trust (EigenTrust) over a large receipt graph: cold and warm recomputation, memory.")
{
    trustPeers, receipts, report,
};
trust.SetAction((parse, _) => TrustScenario.RunAsync(parse.GetValue(trustPeers), parse.GetValue(receipts), parse.GetValue(report)!));

var phaseSeconds = new Option<int>("--seconds") { Description = "Length of each phase (quiet, then one per class of abuse).", DefaultValueFactory = _ => 20 };
var abuse = new Command("abuse", "Honest peers' heartbeat, search and mail p99 on one supernode with default limits, alone and while an attacker with fresh keys floods from 127.0.0.2-9, one class of abuse at a time; data growth per attacker-minute.")
{
    phaseSeconds, report,
};
abuse.SetAction((parse, ct) => AbuseScenario.RunAsync(TimeSpan.FromSeconds(parse.GetValue(phaseSeconds)), parse.GetValue(report)!, ct));

var chaosSeconds = new Option<int>("--seconds") { Description = "How long writes and faults run.", DefaultValueFactory = _ => 60 };
var chaosSeed = new Option<int>("--seed") { Description = "Seed of the writers and the fault schedule (the same seed, the same run).", DefaultValueFactory = _ => 1 };
var chaosNodes = new Option<int>("--supernodes") { Description = "Supernodes on one Redis.", DefaultValueFactory = _ => 4 };
var chaosWriters = new Option<int>("--writers") { Description = "Concurrent writers.", DefaultValueFactory = _ => 8 };
var chaosEvery = new Option<int>("--fault-every") { Description = "Seconds between faults.", DefaultValueFactory = _ => 8 };
var chaosEmbedded = new Option<bool>("--embedded") { Description = "One supernode on its embedded SQLite store (faults: kill -9 of it)." };
var chaos = new Command("chaos", "Writes through random supernodes while a seeded schedule kills (-9), pauses (SIGSTOP) and restarts supernodes and restarts Redis; then every acknowledged write is read back through every supernode: lost, stale, derived views disagreeing, availability by fault.")
{
    chaosSeconds, chaosSeed, chaosNodes, chaosWriters, chaosEvery, chaosEmbedded, settings, report,
};
chaos.SetAction((parse, ct) => ChaosScenario.RunAsync(
    new Hybrid.Testing.Chaos.ChaosSettings
    {
        Duration = TimeSpan.FromSeconds(parse.GetValue(chaosSeconds)),
        Seed = parse.GetValue(chaosSeed),
        Supernodes = parse.GetValue(chaosNodes),
        Writers = parse.GetValue(chaosWriters),
        FaultEvery = TimeSpan.FromSeconds(parse.GetValue(chaosEvery)),
        Embedded = parse.GetValue(chaosEmbedded),
        SupernodeArgs = [.. parse.GetValue(settings)!.Select(s => $"--Supernode:{s}")],
        Log = line => Console.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss} {line}"),
    },
    parse.GetValue(report)!,
    ct));

var natRuns = new Option<int>("--runs") { Description = "Pairs of fresh peers per NAT combination.", DefaultValueFactory = _ => 5 };
var natSeed = new Option<int>("--seed") { Description = "Seed for which side of each pair speaks first.", DefaultValueFactory = _ => 1 };
var nat = new Command("nat", "The NAT matrix in a lab of network namespaces (root): share of pairs ending direct, time from first chat to a direct link, punch attempts per success, per combination of public, endpoint-independent and symmetric NATs.")
{
    natRuns, natSeed, report,
};
nat.SetAction((parse, ct) => NatScenario.RunAsync(parse.GetValue(natRuns), parse.GetValue(natSeed), parse.GetValue(report)!, ct));

var perKind = new Option<int>("--per-kind") { Description = "Judged queries of each kind.", DefaultValueFactory = _ => 40 };
var qualityListings = new Option<int>("--listings") { Description = "Listings in the index.", DefaultValueFactory = _ => 20_000 };
var quality = new Command("search-quality", "Precision@5, recall@20 and zero-result rate on the judged query set, forgiving search against every word as written, in-process.")
{
    qualityListings, perKind, report,
};
quality.SetAction((parse, ct) => QualityScenario.RunAsync(parse.GetValue(qualityListings), parse.GetValue(perKind), parse.GetValue(report)!, ct));

var federationSet = new Option<int>("--set-size") { Description = "Listings in each set when measuring reconciliation bytes (in-process).", DefaultValueFactory = _ => 100_000 };
var federationCatchUp = new Option<int>("--catch-up") { Description = "Listings a cluster holds when an empty one starts pulling from it.", DefaultValueFactory = _ => 100_000 };
var federationConvergence = new Option<string>("--convergence") { Description = "Counts of new listings (and reviews) timed across three clusters, comma-separated; at 10,000 and more the search rate of a federating cluster is compared with a lone supernode's.", DefaultValueFactory = _ => "1,1000" };
var federationReviews = new Option<bool>("--convergence-reviews") { Description = "Time as many new reviews across the three clusters as listings (false: listings only).", DefaultValueFactory = _ => true };
var federation = new Command("federation", "Reconciliation bytes against listing the whole set; time for new listings to cross three clusters; catch-up of an empty cluster.")
{
    federationSet, federationCatchUp, federationConvergence, federationReviews, settings, report,
};
federation.SetAction((parse, ct) => FederationScenario.RunAsync(
    parse.GetValue(federationSet),
    parse.GetValue(federationCatchUp),
    [.. parse.GetValue(federationConvergence)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(c => int.Parse(c, CultureInfo.InvariantCulture))],
    parse.GetValue(federationReviews),
    parse.GetValue(settings)!,
    parse.GetValue(report)!,
    ct));

var root = new RootCommand("Hybrid load runner: real supernode processes on loopback (or in a NAT lab of network namespaces) only.") { failover, failoverPeers, startup, search, index, publish, restart, connect, connectionFloor, connectionFloorServer, transfer, noop, trust, abuse, chaos, nat, quality, federation };
return await root.Parse(args).InvokeAsync();
