using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;

namespace Hybrid.Testing.Chaos;

/// <summary>Settings of a <see cref="ChaosRun"/>.</summary>
public sealed class ChaosSettings
{
    /// <summary>Supernodes in the cluster (on one real Redis); ignored when <see cref="Embedded"/>.</summary>
    public int Supernodes { get; init; } = 4;

    /// <summary>One supernode alone on its embedded SQLite store (the faults are then kill -9 of it).</summary>
    public bool Embedded { get; init; }

    /// <summary>Concurrent writers, each a seller with its own keys and the buyers who review it.</summary>
    public int Writers { get; init; } = 8;

    /// <summary>How long writes and faults run.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Time between faults.</summary>
    public TimeSpan FaultEvery { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>How long a paused (SIGSTOP) supernode stays paused: longer than failure detection.</summary>
    public TimeSpan PauseFor { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>The seed of the writers' choices and the fault schedule: the same seed, the same run.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Settings passed to every supernode.</summary>
    public IReadOnlyList<string> SupernodeArgs { get; init; } = [];

    /// <summary>Where progress lines go.</summary>
    public Action<string> Log { get; init; } = _ => { };

    /// <summary>Each write attempt's latency, with the fault active when it started ("none", "kill", "pause", "redis").</summary>
    public Action<string, TimeSpan> OnCall { get; init; } = (_, _) => { };
}

/// <summary>What a chaos run found.</summary>
public sealed record ChaosReport(
    int Seed,
    long ListingsAcknowledged,
    long ReviewsAcknowledged,
    long RepliesAcknowledged,
    long MailAcknowledged,
    long Unacknowledged,
    IReadOnlyList<string> Lost,
    IReadOnlyList<string> Stale,
    IReadOnlyList<string> Disagreements,
    IReadOnlyDictionary<string, (long Calls, long Answered)> Availability,
    IReadOnlyList<string> Faults,
    IReadOnlyList<string> SelfExits,
    IReadOnlyDictionary<string, long> Unanswered)
{
    /// <summary>Writes acknowledged in all.</summary>
    public long Acknowledged => ListingsAcknowledged + ReviewsAcknowledged + RepliesAcknowledged + MailAcknowledged;

    /// <summary>Nothing acknowledged lost or stale, no derived view disagreeing.</summary>
    public bool Clean => Lost.Count == 0 && Stale.Count == 0 && Disagreements.Count == 0;
}

/// <summary>
/// Writes through random supernodes while a seeded controller kills (-9) and restarts supernodes,
/// pauses one (SIGSTOP) beyond failure detection, and restarts Redis; then reads every acknowledged
/// write back through every supernode and checks the derived views (search, review lists, counts
/// and averages) against the durable objects. Acknowledged means the supernode answered OK.
/// </summary>
public sealed partial class ChaosRun : IAsyncDisposable
{
    /// <summary>The exit code of a supernode that fenced itself after a freeze (as the supernode defines it).</summary>
    public const int FencedExitCode = 75;

    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan ReadPatience = TimeSpan.FromSeconds(60);
    private readonly ChaosSettings _settings;
    private readonly TempDir _temp = new();
    private readonly List<Slot> _slots = [];
    private readonly ConcurrentDictionary<string, AckedListing> _listings = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AckedReview> _reviews = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (long Calls, long Answered)> _availability = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _faults = new();
    private readonly ConcurrentDictionary<string, long> _unanswered = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _mailDeposited = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _mailTaken = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _mailAcked = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<string> _mailRedelivered = [];
    private readonly ConcurrentDictionary<string, PeerIdentity> _recipients = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ulong> _profiles = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _selfExits = new();
    private readonly SemaphoreSlim _relaunching = new(1, 1);
    private readonly string _clusterId = "chaos-" + Guid.NewGuid().ToString("N")[..8];
    private RedisServer? _redis;
    private volatile string _fault = "none";
    private long _unacknowledged;
    private long _replies;

    private ChaosRun(ChaosSettings settings) => _settings = settings;

    /// <summary>Runs the whole thing and reports; the supernodes and Redis are gone afterwards.</summary>
    public static async Task<ChaosReport> RunAsync(ChaosSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await using var run = new ChaosRun(settings);
        await run.StartAsync();
        using var writing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        writing.CancelAfter(settings.Duration);
        var writers = Enumerable.Range(0, settings.Writers).Select(w => Task.Run(() => run.WriteAsync(w, writing.Token), CancellationToken.None)).ToList();
        var faults = Task.Run(() => run.FaultsAsync(writing.Token), CancellationToken.None);
        await Task.WhenAll([.. writers, faults]);
        run._fault = "after";
        settings.Log("writes and faults stopped; bringing every supernode back and reading everything back");
        await run.HealAsync();

        // A supernode that stops during the read-back (a late fence, a silo declared dead) is
        // recorded and started again, so the check reads through the cluster as users would.
        using var checking = new CancellationTokenSource();
        var watch = Task.Run(() => run.WatchAsync(checking.Token), CancellationToken.None);
        try
        {
            return await run.CheckAsync(cancellationToken);
        }
        finally
        {
            await checking.CancelAsync();
            await watch;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var slot in _slots)
        {
            Signal(slot.Node, "CONT");
            await slot.Node.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        foreach (var recipient in _recipients.Values)
        {
            recipient.Dispose();
        }

        _temp.Dispose();
        _relaunching.Dispose();
    }

    private async Task StartAsync()
    {
        if (!_settings.Embedded)
        {
            Directory.CreateDirectory(_temp.Sub("redis"));
            _redis = await RedisServer.StartAsync(_temp.Sub("redis"));
        }

        var count = _settings.Embedded ? 1 : _settings.Supernodes;
        for (var i = 0; i < count; i++)
        {
            _slots.Add(new Slot(i, _temp.Sub($"sn{i}"), Launch(_temp.Sub($"sn{i}"))));
        }

        await Task.WhenAll(_slots.Select(s => s.Node.WaitReadyAsync(TimeSpan.FromSeconds(120))));
        _settings.Log($"{count} supernode(s) ready{(_redis is null ? " (embedded)" : $" on Redis {_redis.ConnectionString}")}");
    }

    private SupernodeProcess Launch(string dataDir)
    {
        string[] limits =
        [
            "--Supernode:RequestsPerSecond=100000", "--Supernode:RequestBurst=100000", "--Supernode:ReviewsPerIdentityPerHour=100000", "--Supernode:SessionsPerMinute=100000",
            "--Supernode:MailboxBytesPerSenderPerHour=1000000000", "--Supernode:MailboxBytesPerHour=100000000000", "--Supernode:MailboxMaxItems=100000", "--Supernode:MailboxMaxBytes=1000000000",
        ];
        string[] cluster = _redis is null ? [] :
        [
            $"--Supernode:Redis={_redis.ConnectionString}",
            $"--Supernode:ClusterId={_clusterId}",
            $"--Supernode:SiloPort={Ports.Free()}",
            $"--Supernode:GatewayPort={Ports.Free()}",
            "--Supernode:AdvertisedUrl=http://127.0.0.1:{grpcPort}",
        ];
        return SupernodeProcess.Launch(dataDir, [.. cluster, .. limits, .. _settings.SupernodeArgs]);
    }

    /// <summary>Starts a supernode again on its data folder, on other ports if the ones picked were taken before it bound them (twice at most).</summary>
    private async Task<SupernodeProcess> RelaunchAsync(string dataDir)
    {
        for (var attempt = 1; ; attempt++)
        {
            var node = Launch(dataDir);
            try
            {
                await node.WaitReadyAsync(TimeSpan.FromSeconds(120), failWhenExited: true);
                return node;
            }
            catch (InvalidOperationException) when (attempt < 3 && node.Output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                _settings.Log($"a port picked for the supernode on {dataDir} was taken before it bound it; starting it again on other ports");
                await node.DisposeAsync();
            }
        }
    }

    /// <summary>One writer: a seller publishing, re-versioning and withdrawing listings, buyers reviewing it, the seller replying.</summary>
    private async Task WriteAsync(int writer, CancellationToken stop)
    {
        var random = new Random(HashCode.Combine(_settings.Seed, writer));
        using var seller = PeerIdentity.Generate();
        var recipient = PeerIdentity.Generate();
        _recipients[recipient.Id.ToString()] = recipient;
        var mine = new List<(Listing Body, ulong Version, bool Withdrawn)>();
        var reviews = new List<(PeerIdentity Buyer, Receipt Receipt, string ReviewId, ulong Version)>();
        try
        {
            // The recipient has been online once, so the network knows it and takes mail for it.
            await TakeAsync(random, recipient, stop);
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                var roll = random.NextDouble();
                if (n > 0 && roll < 0.12)
                {
                    // Mail: the seller leaves a sealed item for the writer's recipient, or the recipient takes its mail.
                    if (random.NextDouble() < 0.7)
                    {
                        await DepositAsync(random, seller, recipient, stop);
                    }
                    else
                    {
                        await TakeAsync(random, recipient, stop);
                    }

                    continue;
                }

                if (roll < 0.40 || mine.Count == 0)
                {
                    var body = ListingFactory.Listing($"Chaos item {Token(writer, n++)}", price: 5 + random.Next(200));
                    if (await CallAsync(random, c => c.Listings.PublishListingAsync(ListingFactory.Sign(seller, body, 1), deadline: Deadline()).ResponseAsync, stop) is not null)
                    {
                        mine.Add((body, 1, false));
                        _listings[body.ListingId] = new AckedListing(body.ListingId, writer, body.Title, 1, false, body.Price);
                    }
                }
                else if (roll < 0.60)
                {
                    var i = random.Next(mine.Count);
                    var (body, version, withdrawn) = mine[i];
                    if (!withdrawn)
                    {
                        var next = body.Clone();
                        next.Price = Protocol.Listings.ListingRules.ParseMoney((5 + random.Next(200)).ToString(CultureInfo.InvariantCulture), "EUR");
                        if (await CallAsync(random, c => c.Listings.PublishListingAsync(ListingFactory.Sign(seller, next, version + 1), deadline: Deadline()).ResponseAsync, stop) is not null)
                        {
                            mine[i] = (next, version + 1, false);
                            _listings[body.ListingId] = new AckedListing(body.ListingId, writer, body.Title, version + 1, false, next.Price);
                        }
                    }
                }
                else if (roll < 0.68)
                {
                    var i = random.Next(mine.Count);
                    var (body, version, withdrawn) = mine[i];
                    if (!withdrawn && await CallAsync(random, c => c.Listings.WithdrawListingAsync(ListingFactory.Withdrawal(seller, body.ListingId, version + 1), deadline: Deadline()).ResponseAsync, stop) is not null)
                    {
                        mine[i] = (body, version + 1, true);
                        _listings[body.ListingId] = new AckedListing(body.ListingId, writer, body.Title, version + 1, true, body.Price);
                    }
                }
                else if (roll < 0.88 || reviews.Count == 0)
                {
                    var buyer = PeerIdentity.Generate();
                    var receipt = Trades.Complete(buyer, seller, 1 + random.Next(100));
                    var stars = (uint)random.Next(1, 6);
                    var envelope = Trades.Review(buyer, seller.Id, receipt, stars);
                    if (await CallAsync(random, c => c.Reputation.SubmitReviewAsync(envelope, deadline: Deadline()).ResponseAsync, stop) is { } answer)
                    {
                        reviews.Add((buyer, receipt, answer.ReviewId, 1));
                        _reviews[answer.ReviewId] = new AckedReview(answer.ReviewId, seller.Id.ToString(), stars, 1, 0);
                    }
                    else
                    {
                        buyer.Dispose();
                    }
                }
                else if (roll < 0.96)
                {
                    var i = random.Next(reviews.Count);
                    var (buyer, receipt, reviewId, version) = reviews[i];
                    var stars = (uint)random.Next(1, 6);
                    var envelope = Trades.Review(buyer, seller.Id, receipt, stars, version: version + 1);
                    if (await CallAsync(random, c => c.Reputation.SubmitReviewAsync(envelope, deadline: Deadline()).ResponseAsync, stop) is not null)
                    {
                        reviews[i] = (buyer, receipt, reviewId, version + 1);
                        _reviews.AddOrUpdate(reviewId, _ => new AckedReview(reviewId, seller.Id.ToString(), stars, version + 1, 0), (_, old) => old with { Stars = stars, Version = version + 1 });
                    }
                }
                else
                {
                    var (_, _, reviewId, _) = reviews[random.Next(reviews.Count)];
                    var replyVersion = _reviews[reviewId].ReplyVersion + 1;
                    var reply = Reviews.SignReply(seller, reviewId, $"Thanks, reply {replyVersion}", replyVersion, DateTimeOffset.UtcNow);
                    if (await CallAsync(random, c => c.Reputation.ReplyToReviewAsync(reply, deadline: Deadline()).ResponseAsync, stop) is not null)
                    {
                        Interlocked.Increment(ref _replies);
                        _reviews.AddOrUpdate(reviewId, _ => throw new InvalidOperationException("replied to an unknown review"), (_, old) => old with { ReplyVersion = Math.Max(old.ReplyVersion, replyVersion) });
                    }
                }
            }
        }
        finally
        {
            reviews.ForEach(r => r.Buyer.Dispose());
        }
    }

    /// <summary>
    /// One write, the same signed bytes tried through random supernodes until one answers OK (the
    /// write is then acknowledged) or refuses it for good, or until <see cref="GiveUpAfter"/>.
    /// </summary>
    private async Task<T?> CallAsync<T>(Random random, Func<Protocol.Api.SupernodeClients, Task<T>> call, CancellationToken stop)
        where T : class
    {
        var started = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started) < GiveUpAfter)
        {
            var slot = _slots[random.Next(_slots.Count)];
            var fault = _fault;
            var attempt = Stopwatch.GetTimestamp();
            try
            {
                var answer = await call(slot.Node.Client);
                Count(fault, answered: true);
                _settings.OnCall(fault, Stopwatch.GetElapsedTime(attempt));
                return answer;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown or StatusCode.Cancelled)
            {
                Count(fault, answered: false);
            }
            catch (RpcException ex)
            {
                // A definite refusal (a replay, a stale version): answered, and not acknowledged.
                Count(fault, answered: true);
                Interlocked.Increment(ref _unacknowledged);
                _unanswered.AddOrUpdate($"refused {ex.StatusCode}: {(ex.Status.Detail.Length > 60 ? ex.Status.Detail[..60] : ex.Status.Detail)}", 1, (_, n) => n + 1);
                return null;
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or ObjectDisposedException or InvalidOperationException)
            {
                Count(fault, answered: false);
            }

            if (stop.IsCancellationRequested && Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(10))
            {
                break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100 + random.Next(200)), CancellationToken.None);
        }

        Interlocked.Increment(ref _unacknowledged);
        _unanswered.AddOrUpdate("gave up: no supernode answered", 1, (_, n) => n + 1);
        return null;
    }

    private async Task DepositAsync(Random random, PeerIdentity sender, PeerIdentity recipient, CancellationToken stop)
    {
        var item = Protocol.Sealing.SealedBoxes.Seal(System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 + random.Next(400)), recipient.PublicKey);
        var deposited = await CallAsync(
            random,
            async c =>
            {
                await using var session = await RawPeerSession.OpenAsync(c, sender, Deadline());
                Welcomed(sender, session);
                return await c.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = recipient.Id.ToString(), Item = item }, session.Token, Deadline()).ResponseAsync;
            },
            stop);
        if (deposited is not null)
        {
            _mailDeposited[deposited.ItemId] = recipient.Id.ToString();
        }
    }

    /// <summary>The recipient takes its mail (a page) and acknowledges it; an item seen again after its acknowledgement is a redelivery.</summary>
    private async Task TakeAsync(Random random, PeerIdentity recipient, CancellationToken stop) =>
        await CallAsync(random, c => TakeOnceAsync(c, recipient), stop);

    private async Task<TakeMailResponse> TakeOnceAsync(Protocol.Api.SupernodeClients client, PeerIdentity recipient)
    {
        await using var session = await RawPeerSession.OpenAsync(client, recipient, Deadline());
        Welcomed(recipient, session);
        var taken = await client.Mailbox.TakeMailAsync(new TakeMailRequest { Limit = 100 }, session.Token, Deadline()).ResponseAsync;
        if (taken.Items.Count == 0)
        {
            return taken;
        }

        // Delivered once the recipient holds it (its acknowledgement may still be lost on the way:
        // then the item comes again, which is allowed; after an acknowledgement the supernode
        // answered, it must not).
        foreach (var item in taken.Items)
        {
            if (_mailAcked.ContainsKey(item.ItemId))
            {
                _mailRedelivered.Add($"mail item {item.ItemId} for {recipient.Id.ToString()[..12]}… was delivered again after its recipient's acknowledgement was answered");
            }

            _mailTaken.TryAdd(item.ItemId, recipient.Id.ToString());
        }

        var ack = new AckMailRequest();
        ack.ItemIds.AddRange(taken.Items.Select(i => i.ItemId));
        await client.Mailbox.AckMailAsync(ack, session.Token, Deadline()).ResponseAsync;
        foreach (var item in taken.Items)
        {
            _mailAcked.TryAdd(item.ItemId, recipient.Id.ToString());
        }

        return taken;
    }

    /// <summary>A session's welcome acknowledges the profile its hello carried.</summary>
    private void Welcomed(PeerIdentity peer, RawPeerSession session) =>
        _profiles.AddOrUpdate(peer.Id.ToString(), session.ProfileVersion, (_, v) => Math.Max(v, session.ProfileVersion));

    private void Count(string fault, bool answered) =>
        _availability.AddOrUpdate(fault, _ => (1, answered ? 1 : 0), (_, v) => (v.Calls + 1, v.Answered + (answered ? 1 : 0)));

    /// <summary>The seeded fault schedule: kill -9 and restart, a pause beyond failure detection, one Redis restart.</summary>
    private async Task FaultsAsync(CancellationToken stop)
    {
        var random = new Random(_settings.Seed);
        var redisDone = false;
        for (var round = 1; ; round++)
        {
            try
            {
                await Task.Delay(_settings.FaultEvery, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            await RelaunchSelfExitedAsync();
            var slot = _slots[random.Next(_slots.Count)];
            if (_redis is not null && !redisDone && round == 3)
            {
                redisDone = true;
                Remember("redis", "redis-server killed (-9) and restarted from its append-only file");
                await _redis.StopAsync();
                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
                await _redis.RestartAsync();
            }
            else if (_redis is not null && _slots.Count > 1 && round % 3 == 2)
            {
                Remember("pause", $"supernode {slot.Index} paused (SIGSTOP) for {_settings.PauseFor.TotalSeconds:0} s");
                Signal(slot.Node, "STOP");
                await Task.Delay(_settings.PauseFor, CancellationToken.None);
                Signal(slot.Node, "CONT");
            }
            else
            {
                Remember("kill", $"supernode {slot.Index} killed (-9) and restarted");
                slot.Node.KillHard();
                var killed = slot.Node;
                slot.Node = await RelaunchAsync(slot.DataDir);
                await killed.DisposeAsync();
            }

            _fault = "none";
        }
    }

    private void Remember(string kind, string what)
    {
        _fault = kind;
        _faults.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss} {what}");
        _settings.Log(what);
    }

    /// <summary>A supernode that stopped by itself (not killed by the schedule) is recorded and started again.</summary>
    private async Task RelaunchSelfExitedAsync()
    {
        await _relaunching.WaitAsync();
        try
        {
            foreach (var slot in _slots.Where(s => s.Node.HasExited))
            {
                var why = slot.Node.ExitCode == FencedExitCode
                    ? $"fenced itself after a freeze longer than failure detection (exit {FencedExitCode})"
                    : $"exited by itself (code {slot.Node.ExitCode})";
                // Writes its grains still had in flight when it ran again, refused by the store because the grains had moved (and not acknowledged).
                var refused = slot.Node.Output.Split(Environment.NewLine).Count(l => l.Contains("has moved to another supernode", StringComparison.Ordinal));
                _selfExits.Enqueue($"{DateTimeOffset.UtcNow:HH:mm:ss} supernode {slot.Index} {why}{(refused > 0 ? $", after the store refused {refused} writes from its moved grains" : string.Empty)}");
                var tail = slot.Node.Output.Split(Environment.NewLine).Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).TakeLast(12);
                _settings.Log($"supernode {slot.Index} {why} during phase '{_fault}'; restarting it. Its last output:{Environment.NewLine}  {string.Join($"{Environment.NewLine}  ", tail)}");
                // Readers keep using the exited node (and retry its Unavailable) until the new one is in its place.
                var exited = slot.Node;
                slot.Node = await RelaunchAsync(slot.DataDir);
                await exited.DisposeAsync();
            }
        }
        finally
        {
            _relaunching.Release();
        }
    }

    /// <summary>Restarts supernodes that stop by themselves, once a second, until cancelled.</summary>
    private async Task WatchAsync(CancellationToken stop)
    {
        _fault = "check";
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            await RelaunchSelfExitedAsync();
        }
    }

    /// <summary>
    /// Resumes every supernode, restarts any that stopped (a resumed one fences itself within a few
    /// seconds), and waits until every one answers twice in a row, a second apart (bounded: 2 minutes).
    /// </summary>
    private async Task HealAsync()
    {
        foreach (var slot in _slots)
        {
            Signal(slot.Node, "CONT");
        }

        var deadline = Stopwatch.GetTimestamp();
        var steady = 0;
        while (steady < 2 && Stopwatch.GetElapsedTime(deadline) < TimeSpan.FromMinutes(2))
        {
            await Task.Delay(TimeSpan.FromSeconds(steady == 0 ? 3 : 1));
            await RelaunchSelfExitedAsync();
            await Task.WhenAll(_slots.Select(s => s.Node.WaitReadyAsync(TimeSpan.FromSeconds(120))));
            var answering = await Task.WhenAll(_slots.Select(async s =>
            {
                try
                {
                    await s.Node.Client.Directory.ListSupernodesAsync(new ListSupernodesRequest(), deadline: Deadline());
                    return !s.Node.HasExited;
                }
                catch (RpcException)
                {
                    return false;
                }
            }));
            steady = answering.All(a => a) ? steady + 1 : 0;
        }
    }

    private async Task<ChaosReport> CheckAsync(CancellationToken cancellationToken)
    {
        var lost = new ConcurrentBag<string>();
        var stale = new ConcurrentBag<string>();
        var disagree = new ConcurrentBag<string>();
        var options = new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken };

        try
        {
            // Every acknowledged listing, through every supernode, at its acknowledged version and state.
            await Parallel.ForEachAsync(_listings.Values, options, async (acked, ct) =>
            {
                foreach (var slot in _slots)
                {
                    var record = await ReadAsync(() => slot.Node.Client.Listings.GetListingAsync(new GetListingRequest { ListingId = acked.ListingId }, deadline: Deadline()).ResponseAsync);
                    if (record is null)
                    {
                        lost.Add($"listing {acked.ListingId} (version {acked.Version}) not found through supernode {slot.Index}");
                    }
                    else if (record.Version < acked.Version
                        || (acked.Withdrawn && record.State != ListingState.Withdrawn)
                        // At the acknowledged version, exactly what was acknowledged: live with its price, or withdrawn.
                        || (record.Version == acked.Version && !acked.Withdrawn && (record.State == ListingState.Withdrawn || !record.Listing.Price.Equals(acked.Price))))
                    {
                        stale.Add($"listing {acked.ListingId}: supernode {slot.Index} serves version {record.Version} ({record.State}, price {record.Listing.Price}); version {acked.Version}{(acked.Withdrawn ? " (withdrawn)" : $" (price {acked.Price})")} was acknowledged");
                    }
                }
            });

            // Search agrees with the listings: a sample of unique titles, found while active, gone once withdrawn.
            var sample = new Random(_settings.Seed).GetItems(_listings.Values.OrderBy(l => l.ListingId, StringComparer.Ordinal).ToArray(), Math.Min(100, _listings.Count)).DistinctBy(l => l.ListingId);
            await Parallel.ForEachAsync(sample, options, async (acked, ct) =>
            {
                var token = acked.Title.Split(' ')[^1];
                foreach (var slot in _slots)
                {
                    var found = await ReadAsync(() => slot.Node.Client.Listings.SearchAsync(new SearchRequest { Text = token, Limit = 10 }, deadline: Deadline()).ResponseAsync);
                    var hit = found?.Hits.FirstOrDefault(h => h.Record.Listing.ListingId == acked.ListingId);
                    if (found is null)
                    {
                        disagree.Add($"search for {token} failed through supernode {slot.Index}");
                    }
                    else if (acked.Withdrawn ? hit is not null : hit is null || hit.Record.Version < acked.Version)
                    {
                        disagree.Add($"search for listing {acked.ListingId} through supernode {slot.Index}: {(hit is null ? "no hit" : $"hit at version {hit.Record.Version}")}, acknowledged version {acked.Version}{(acked.Withdrawn ? " (withdrawn)" : string.Empty)}");
                    }
                }
            });

            // Every acknowledged review in its seller's list, at its version; counts and averages from the same reviews.
            await Parallel.ForEachAsync(_reviews.Values.GroupBy(r => r.Reviewed), options, async (seller, ct) =>
            {
                foreach (var slot in _slots)
                {
                    var listed = await ListAllReviewsAsync(slot, seller.Key);
                    if (listed is null)
                    {
                        disagree.Add($"reviews of {seller.Key} could not be listed through supernode {slot.Index}");
                        continue;
                    }

                    foreach (var acked in seller)
                    {
                        if (!listed.TryGetValue(acked.ReviewId, out var record))
                        {
                            lost.Add($"review {acked.ReviewId} (version {acked.Version}) missing from the reviews of {seller.Key[..12]}… through supernode {slot.Index}");
                        }
                        else if (record.Version < acked.Version || (record.Version == acked.Version && record.Stars != acked.Stars) || (acked.ReplyVersion > 0 && record.Reply is null))
                        {
                            stale.Add($"review {acked.ReviewId}: supernode {slot.Index} lists version {record.Version} ({record.Stars} stars{(record.Reply is null ? ", no reply" : string.Empty)}); version {acked.Version} ({acked.Stars} stars{(acked.ReplyVersion > 0 ? ", replied" : string.Empty)}) was acknowledged");
                        }
                    }

                    var reputation = await ReadAsync(() => slot.Node.Client.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = seller.Key }, deadline: Deadline()).ResponseAsync);
                    var average = listed.Count == 0 ? 0 : Math.Round(listed.Values.Average(r => (double)r.Stars), 3);
                    if (reputation is null || reputation.Count != listed.Count || Math.Abs(reputation.Average - average) > 0.001)
                    {
                        disagree.Add($"reputation of {seller.Key[..12]}… through supernode {slot.Index}: count {reputation?.Count} average {reputation?.Average}; its review list has {listed.Count} with average {average}");
                    }
                }
            });

            // Profiles: every supernode serves each peer's newest acknowledged profile (or a newer one).
            var profiles = _profiles.ToArray();
            await Parallel.ForEachAsync(profiles, options, async (profile, ct) =>
            {
                foreach (var slot in _slots)
                {
                    var info = await ReadAsync(() => slot.Node.Client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = profile.Key }, deadline: Deadline()).ResponseAsync);
                    var served = info?.Profile is { } envelope ? EnvelopePayload.Parser.ParseFrom(envelope.Payload).Version : 0;
                    if (info is null)
                    {
                        lost.Add($"peer {profile.Key[..12]}… unknown through supernode {slot.Index}");
                    }
                    else if (served < profile.Value)
                    {
                        stale.Add($"peer {profile.Key[..12]}…: supernode {slot.Index} serves profile version {served}; version {profile.Value} was acknowledged");
                    }
                }
            });

            // Trust inputs agree with the reviews: each acknowledged review has its input, at least at its version.
            if (_redis is not null)
            {
                var inputs = await TrustInputsAsync(_redis);
                foreach (var acked in _reviews.Values)
                {
                    if (!inputs.TryGetValue(acked.ReviewId, out var input))
                    {
                        disagree.Add($"review {acked.ReviewId} (version {acked.Version}) has no input in the trust graph");
                    }
                    else if (input.Version < acked.Version || input.Reviewed != acked.Reviewed)
                    {
                        disagree.Add($"review {acked.ReviewId}: the trust graph holds version {input.Version} for {input.Reviewed[..12]}…; version {acked.Version} was acknowledged");
                    }
                }
            }
        }
        catch (UnansweredException ex)
        {
            disagree.Add($"a supernode did not answer reads for {ReadPatience.TotalSeconds:0} s after the run (the check could not finish): {ex.Message}");
        }

        // Mail: every acknowledged deposit was taken by its recipient, or is still waiting for it now.
        foreach (var recipient in _recipients.Values)
        {
            for (var page = 0; page < 1000; page++)
            {
                TakeMailResponse? taken;
                try
                {
                    taken = await ReadAsync(() => TakeOnceAsync(_slots[page % _slots.Count].Node.Client, recipient));
                }
                catch (UnansweredException)
                {
                    continue;
                }

                if (taken is null || taken.Items.Count == 0)
                {
                    break;
                }
            }
        }

        foreach (var (itemId, recipient) in _mailDeposited.Where(d => !_mailTaken.ContainsKey(d.Key)))
        {
            lost.Add($"mail item {itemId} for {recipient[..12]}… was acknowledged but never delivered");
        }

        foreach (var redelivered in _mailRedelivered)
        {
            stale.Add(redelivered);
        }

        return new ChaosReport(
            _settings.Seed,
            _listings.Count,
            _reviews.Count,
            Interlocked.Read(ref _replies),
            _mailDeposited.Count,
            Interlocked.Read(ref _unacknowledged),
            [.. lost],
            [.. stale],
            [.. disagree],
            _availability.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
            [.. _faults],
            [.. _selfExits],
            _unanswered.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));
    }

    /// <summary>The trust graph's inputs as the cluster stores them (one Redis hash, a JSON record per review).</summary>
    private static async Task<Dictionary<string, TrustInputRecord>> TrustInputsAsync(RedisServer redis)
    {
        var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in (string[])["-p", redis.Port.ToString(CultureInfo.InvariantCulture), "--raw", "HGETALL", "hybrid/items/trust-inputs"])
        {
            start.ArgumentList.Add(arg);
        }

        using var cli = Process.Start(start) ?? throw new InvalidOperationException("redis-cli did not start");
        var lines = (await cli.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        await cli.WaitForExitAsync();
        var inputs = new Dictionary<string, TrustInputRecord>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < lines.Length; i += 2)
        {
            inputs[lines[i]] = System.Text.Json.JsonSerializer.Deserialize<TrustInputRecord>(lines[i + 1])!;
        }

        return inputs;
    }

    private static async Task<Dictionary<string, ReviewRecord>?> ListAllReviewsAsync(Slot slot, string seller)
    {
        var all = new Dictionary<string, ReviewRecord>(StringComparer.Ordinal);
        var token = string.Empty;
        do
        {
            var page = await ReadAsync(() => slot.Node.Client.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = seller, Limit = 100, PageToken = token }, deadline: Deadline()).ResponseAsync);
            if (page is null)
            {
                return null;
            }

            foreach (var record in page.Reviews)
            {
                all[record.ReviewId] = record;
            }

            token = page.NextPageToken;
        }
        while (token.Length > 0);
        return all;
    }

    /// <summary>
    /// A read, retried through transient failures for up to <see cref="ReadPatience"/>; null for
    /// NotFound. A supernode that never answers throws <see cref="UnansweredException"/>, which the
    /// checker reports as such (not as lost).
    /// </summary>
    private static async Task<T?> ReadAsync<T>(Func<Task<T>> read)
        where T : class
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                return await read();
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
            {
                return null;
            }
            catch (Exception ex) when (ex is RpcException { StatusCode: StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Cancelled } or ObjectDisposedException)
            {
                // ObjectDisposedException: the slot's supernode was being replaced while this read began.
                if (Stopwatch.GetElapsedTime(started) > ReadPatience)
                {
                    throw new UnansweredException(ex is RpcException rpc ? rpc.Status.Detail : ex.Message);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(500));
            }
        }
    }

    private static DateTime Deadline() => DateTime.UtcNow + CallDeadline;

    /// <summary>
    /// A title word unique to one listing of one writer: consonants only (no s or y), so no stemmer
    /// folds two of them into one search token.
    /// </summary>
    private static string Token(int writer, int n)
    {
        const string Consonants = "bcdfghjklmnpqrtvwxz";
        var value = ((long)writer * 1_000_000) + n;
        var letters = new System.Text.StringBuilder("qz");
        do
        {
            letters.Append(Consonants[(int)(value % Consonants.Length)]);
            value /= Consonants.Length;
        }
        while (value > 0);
        return letters.ToString();
    }

    private static void Signal(SupernodeProcess node, string signal)
    {
        if (node.HasExited)
        {
            return;
        }

        using var kill = Process.Start("kill", [$"-{signal}", node.ProcessId.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private sealed class Slot(int index, string dataDir, SupernodeProcess node)
    {
        public int Index { get; } = index;

        public string DataDir { get; } = dataDir;

        public SupernodeProcess Node { get; set; } = node;
    }

    /// <summary>A supernode gave no answer to a read for <see cref="ReadPatience"/>.</summary>
    private sealed class UnansweredException(string message) : Exception(message);

    /// <summary>A listing write the network acknowledged: its version, whether it was a withdrawal, and (for a publish) the price it set.</summary>
    private sealed record AckedListing(string ListingId, int Writer, string Title, ulong Version, bool Withdrawn, Money Price);

    private sealed record AckedReview(string ReviewId, string Reviewed, uint Stars, ulong Version, ulong ReplyVersion);

    /// <summary>A trust input as stored (the fields the check reads).</summary>
    private sealed record TrustInputRecord(string ReviewId, string Reviewer, string Reviewed, double Contribution, ulong Version);
}
