using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using HdrHistogram;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Load;

/// <summary>
/// Honest peers' experience (heartbeat round trip, search, mail delivery) on one embedded supernode
/// with the default limits, first alone and then while one attacker with fresh keys floods from eight
/// loopback addresses (127.0.0.2-9), one class of abuse at a time. Reports each p99 as a ratio to the
/// quiet phase, and how much the supernode's data grew per attacker-minute.
/// </summary>
internal static class AbuseScenario
{
    private const int HonestPeers = 16;
    private const int AttackAddresses = 8;

    private sealed record Phase(string Name, Func<Attack, int, CancellationToken, Task> Attack);

    public static async Task<int> RunAsync(TimeSpan phase, string reportFolder, CancellationToken cancellationToken)
    {
        using var temp = new TempDir();
        // The product's defaults for admission and quotas (the harness opens them for tests; put them back).
        await using var node = await SupernodeProcess.StartAsync(
            temp.Sub("data"),
            "--Supernode:IdentityWorkBits=20",
            "--Supernode:NewIdentitiesPerAddressPerHour=10",
            "--Supernode:NewIdentitiesPerMinute=120",
            "--Supernode:MaxListingsPerSeller=1000",
            "--Supernode:MaxListingBytesPerSeller=4194304",
            "--Supernode:MaxListings=2000000",
            "--Supernode:MaxListingBytes=2147483648");
        // The attacker's keys first: minting takes a while, and honest sessions must not sit idle meanwhile.
        var attack = await Attack.PrepareAsync(node.GrpcUrl, cancellationToken);
        Console.WriteLine("preparing honest peers and their listings…");
        var honest = await Honest.StartAsync(node.GrpcUrl, cancellationToken);
        attack.Target(honest);

        var report = new Report("abuse", "heartbeat round trip, no attack");
        Phase[] phases =
        [
            new("warm-up (ignored)", (_, _, _) => Task.CompletedTask),
            new("no attack", (_, _, _) => Task.CompletedTask),
            new("replayed listings", (a, i, ct) => a.ReplayAsync(i, ct)),
            new("fresh-key listings", (a, i, ct) => a.FreshKeysAsync(i, ct)),
            new("mailbox flood", (a, i, ct) => a.MailFloodAsync(i, ct)),
            new("malformed bodies", (a, i, ct) => a.MalformedAsync(i, ct)),
        ];

        var quiet = default((long Heartbeat, long Search, long Mail));
        var worst = 0.0;
        foreach (var p in phases)
        {
            Console.WriteLine($"phase: {p.Name}");
            var before = DataBytes(node.DataDir);
            var heartbeats = report.Series($"heartbeat round trip, {p.Name}");
            var searches = report.Series($"search, {p.Name}");
            var mail = report.Series($"mail deposit to delivery, {p.Name}");
            using var stop = new CancellationTokenSource(phase);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, cancellationToken);
            var attackers = Enumerable.Range(0, AttackAddresses).Select(i => Task.Run(
                async () =>
                {
                    try
                    {
                        await p.Attack(attack, i, linked.Token);
                    }
                    catch (Exception ex) when (!linked.IsCancellationRequested)
                    {
                        Console.WriteLine($"attacker {i} stopped: {ex.GetType().Name}: {ex.Message}");
                    }
                },
                CancellationToken.None)).ToList();
            await honest.MeasureAsync(heartbeats, searches, mail, linked.Token);
            await Task.WhenAll(attackers).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

            var grown = DataBytes(node.DataDir) - before;
            var p99 = (H: P99(heartbeats), S: P99(searches), M: P99(mail));
            if (p.Name.StartsWith("warm-up", StringComparison.Ordinal))
            {
                continue;
            }

            if (p.Name == "no attack")
            {
                quiet = (p99.H, p99.S, p99.M);
                report.Fact("honest p99 without attack: heartbeat / search / mail", $"{p99.H / 1000.0:0.0} / {p99.S / 1000.0:0.0} / {p99.M / 1000.0:0.0} ms");
                continue;
            }

            var ratios = (H: (double)p99.H / quiet.Heartbeat, S: (double)p99.S / quiet.Search, M: (double)p99.M / quiet.Mail);
            worst = Math.Max(worst, Math.Max(ratios.H, Math.Max(ratios.S, ratios.M)));
            report.Fact($"{p.Name}: honest p99 vs no attack (heartbeat / search / mail)", string.Create(CultureInfo.InvariantCulture, $"{ratios.H:0.00} / {ratios.S:0.00} / {ratios.M:0.00}"));
            report.Fact($"{p.Name}: attacker calls answered / refused (by status)", attack.Summary());
            report.Fact($"{p.Name}: data growth per attacker-minute", $"{grown / phase.TotalMinutes / 1024:N0} KiB");
            attack.ResetCounts();
        }

        report.Fact("worst honest p99 ratio (goal ≤ 2)", worst.ToString("0.00", CultureInfo.InvariantCulture));
        await honest.DisposeAsync();
        attack.Dispose();
        await report.WriteAsync(reportFolder, new Dictionary<string, string>
        {
            ["phase_seconds"] = phase.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["honest_peers"] = HonestPeers.ToString(CultureInfo.InvariantCulture),
            ["attack_addresses"] = AttackAddresses.ToString(CultureInfo.InvariantCulture),
        });
        return 0;
    }

    /// <summary>A session answered by hand (challenge, signed proof naming the URL dialed, work stamp); returns the call and its token.</summary>
    private static async Task<(AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> Call, Metadata Token)> OpenSessionAsync(Protocol.Api.SupernodeClients client, PeerIdentity identity, byte[] stamp, SignedEnvelope? profile, CancellationToken cancellationToken)
    {
        var call = client.Directory.Session(cancellationToken: cancellationToken);
        try
        {
            await call.ResponseStream.MoveNext(cancellationToken);
            var challenge = call.ResponseStream.Current.Challenge;
            var now = DateTimeOffset.UtcNow;
            var proof = SignedEnvelopes.Sign(identity, EnvelopeKinds.SessionProof, 1, new SessionProof { Challenge = challenge.Nonce, SupernodeId = challenge.SupernodeId, DialedUrl = challenge.SupernodeUrl }, now, now.AddMinutes(1));
            await call.RequestStream.WriteAsync(new SessionClientMessage { Hello = new SessionHello { Proof = proof, Profile = profile, Work = ByteString.CopyFrom(stamp) } }, cancellationToken);
            await call.ResponseStream.MoveNext(cancellationToken);
            return (call, new Metadata { { Protocol.Api.SupernodeClients.SessionHeader, call.ResponseStream.Current.Welcome.SessionToken } });
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    private static long P99(LongHistogram histogram) => Math.Max(1, histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(99));

    private static long DataBytes(string folder) =>
        Directory.Exists(folder) ? new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;

    /// <summary>The honest side: peers in session heartbeating, one searching, one pair mailing.</summary>
    private sealed class Honest : IAsyncDisposable
    {
        private readonly List<(PeerIdentity Identity, AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> Call, Metadata Token, Protocol.Api.SupernodeClients Client, GrpcChannel Channel)> _peers;

        private Honest(List<(PeerIdentity, AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage>, Metadata, Protocol.Api.SupernodeClients, GrpcChannel)> peers) => _peers = peers;

        public List<SignedEnvelope> Listings { get; private set; } = [];

        public PeerIdentity Recipient => _peers[1].Identity;

        public static async Task<Honest> StartAsync(string url, CancellationToken cancellationToken)
        {
            var peers = new List<(PeerIdentity, AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage>, Metadata, Protocol.Api.SupernodeClients, GrpcChannel)>();
            // Stamps first, so no session sits without heartbeats while the next peer mints.
            var keys = await Task.Run(() => Enumerable.Range(0, HonestPeers).Select(_ =>
            {
                var identity = PeerIdentity.Generate();
                return (Identity: identity, Stamp: WorkStamps.Mint(identity.PublicKey, 20, cancellationToken));
            }).ToList(), cancellationToken);
            for (var i = 0; i < HonestPeers; i++)
            {
                // Honest users, each from an address of its own (127.0.1.x).
                var channel = LoopbackSource.Channel(url, $"127.0.1.{i + 1}");
                var client = new Protocol.Api.SupernodeClients(channel);
                var identity = keys[i].Identity;
                var now = DateTimeOffset.UtcNow;
                var profile = SignedEnvelopes.Sign(identity, EnvelopeKinds.Profile, 1, new PeerProfile { DisplayName = $"Honest {i}" }, now, now.AddDays(1));
                var (call, token) = await OpenSessionAsync(client, identity, keys[i].Stamp, profile, cancellationToken);
                peers.Add((identity, call, token, client, channel));
            }

            var honest = new Honest(peers);
            var listings = new List<SignedEnvelope>();
            foreach (var (listing, n) in ListingFactory.Realistic(7).Take(200).Select((l, n) => (l, n)))
            {
                var seller = peers[n % HonestPeers];
                var envelope = ListingFactory.Sign(seller.Item1, listing);
                await seller.Item4.Listings.PublishListingAsync(envelope, cancellationToken: cancellationToken);
                listings.Add(envelope);
            }

            honest.Listings = listings;
            return honest;
        }

        /// <summary>Until cancelled: each peer heartbeats every 500 ms (timed), one searches, one mails another.</summary>
        public async Task MeasureAsync(LongHistogram heartbeats, LongHistogram searches, LongHistogram mail, CancellationToken cancellationToken)
        {
            var beats = _peers.Select(p => Task.Run(async () =>
            {
                ulong sequence = 0;
                while (!cancellationToken.IsCancellationRequested)
                {
                    var started = Stopwatch.GetTimestamp();
                    await p.Call.RequestStream.WriteAsync(new SessionClientMessage { Heartbeat = new Heartbeat { Sequence = ++sequence } }, CancellationToken.None);
                    while (await p.Call.ResponseStream.MoveNext(CancellationToken.None) && p.Call.ResponseStream.Current.KindCase != SessionServerMessage.KindOneofCase.HeartbeatAck)
                    {
                    }

                    Report.Record(heartbeats, Stopwatch.GetElapsedTime(started));
                    await Task.Delay(500, CancellationToken.None);
                }
            }, CancellationToken.None));
            var words = new[] { "lamp", "bike", "chair", "book", "guitar", "camera" };
            var searching = Task.Run(async () =>
            {
                for (var i = 0; !cancellationToken.IsCancellationRequested; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    await _peers[2].Client.Listings.SearchAsync(new SearchRequest { Text = words[i % words.Length], Limit = 20 }, cancellationToken: CancellationToken.None);
                    Report.Record(searches, Stopwatch.GetElapsedTime(started));
                    await Task.Delay(50, CancellationToken.None);
                }
            }, CancellationToken.None);
            var mailing = Task.Run(async () =>
            {
                var (sender, recipient) = (_peers[0], _peers[1]);
                while (!cancellationToken.IsCancellationRequested)
                {
                    var started = Stopwatch.GetTimestamp();
                    var stored = await sender.Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = recipient.Identity.Id.ToString(), Item = SealedBoxes.Seal("see you at noon"u8, recipient.Identity.PublicKey) }, sender.Token, cancellationToken: CancellationToken.None);
                    var taken = new List<string>();
                    while (!taken.Contains(stored.ItemId))
                    {
                        var page = await recipient.Client.Mailbox.TakeMailAsync(new TakeMailRequest(), recipient.Token, cancellationToken: CancellationToken.None);
                        taken.AddRange(page.Items.Select(m => m.ItemId));
                        await recipient.Client.Mailbox.AckMailAsync(new AckMailRequest { ItemIds = { page.Items.Select(m => m.ItemId) } }, recipient.Token, cancellationToken: CancellationToken.None);
                    }

                    Report.Record(mail, Stopwatch.GetElapsedTime(started));
                    await Task.Delay(200, CancellationToken.None);
                }
            }, CancellationToken.None);
            await Task.WhenAll([.. beats, searching, mailing]);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var peer in _peers)
            {
                peer.Call.Dispose();
                peer.Channel.Dispose();
                peer.Identity.Dispose();
            }

            await Task.CompletedTask;
        }
    }

    /// <summary>The attacker: eight source addresses, fresh keys with stamps minted before the clock starts.</summary>
    private sealed class Attack : IDisposable
    {
        private readonly List<GrpcChannel> _channels;
        private readonly Queue<(PeerIdentity Identity, string Stamp)>[] _fresh;
        private readonly Dictionary<PeerIdentity, SignedEnvelope[]> _signed = [];
        private readonly (PeerIdentity Identity, string Stamp)[][] _unstamped;
        private readonly Dictionary<StatusCode, long> _counts = [];
        private readonly List<PeerIdentity>[] _admitted = [.. Enumerable.Range(0, AttackAddresses).Select(_ => new List<PeerIdentity>())];
        private Honest _honest = null!;

        private Attack(List<GrpcChannel> channels, Queue<(PeerIdentity, string)>[] fresh, (PeerIdentity, string)[][] unstamped)
        {
            _channels = channels;
            _fresh = fresh;
            _unstamped = unstamped;
            // Every listing the attacker will send is signed now: its signing is its own machines' work, not the supernode's.
            var padding = new string('x', 7000);
            foreach (var identity in fresh.SelectMany(q => q).Concat(unstamped.SelectMany(u => u)).Select(e => e.Item1))
            {
                _signed[identity] = [.. Enumerable.Range(0, 50).Select(n => ListingFactory.Sign(identity, ListingFactory.Listing($"Spam {n}", padding)))];
            }
        }

        /// <summary>The honest peers whose listings are replayed and whose mailbox is flooded.</summary>
        public void Target(Honest honest) => _honest = honest;

        public static async Task<Attack> PrepareAsync(string url, CancellationToken cancellationToken)
        {
            var channels = Enumerable.Range(2, AttackAddresses).Select(i => LoopbackSource.Channel(url, $"127.0.0.{i}")).ToList();
            // The attacker's own machines would mint these; here they are made before the measurement.
            Console.WriteLine("minting the attacker's fresh identities…");
            var fresh = await Task.Run(() => Enumerable.Range(0, AttackAddresses).Select(_ => new Queue<(PeerIdentity, string)>(Enumerable.Range(0, 16).Select(_ =>
            {
                var identity = PeerIdentity.Generate();
                return (identity, Convert.ToHexString(WorkStamps.Mint(identity.PublicKey, 20, cancellationToken)));
            }))).ToArray(), cancellationToken);
            var unstamped = Enumerable.Range(0, AttackAddresses).Select(_ => Enumerable.Range(0, 4).Select(_ => (PeerIdentity.Generate(), "0000000000000000")).ToArray()).ToArray();
            return await Task.Run(() => new Attack(channels, fresh, unstamped), cancellationToken);
        }

        public string Summary()
        {
            lock (_counts)
            {
                return string.Join(", ", _counts.OrderByDescending(c => c.Value).Select(c => $"{c.Key} {c.Value:N0}"));
            }
        }

        public void ResetCounts()
        {
            lock (_counts)
            {
                _counts.Clear();
            }
        }

        public async Task ReplayAsync(int address, CancellationToken cancellationToken)
        {
            var client = Client(address);
            for (var i = address; !cancellationToken.IsCancellationRequested; i++)
            {
                await CountAsync(() => client.Listings.PublishListingAsync(_honest.Listings[i % _honest.Listings.Count], cancellationToken: cancellationToken).ResponseAsync);
            }
        }

        public async Task FreshKeysAsync(int address, CancellationToken cancellationToken)
        {
            var client = Client(address);
            for (var spare = 0; !cancellationToken.IsCancellationRequested; spare++)
            {
                (PeerIdentity Identity, string Stamp) next;
                lock (_fresh[address])
                {
                    next = _fresh[address].Count > 0 ? _fresh[address].Dequeue() : _unstamped[address][spare % _unstamped[address].Length];
                }

                // Each fresh key publishes as much as it may; without a valid stamp (the supply ran out) it is refused.
                for (var n = 0; n < 50 && !cancellationToken.IsCancellationRequested; n++)
                {
                    var envelope = _signed[next.Identity][n];
                    if (await CountAsync(() => client.Listings.PublishListingAsync(envelope, new Metadata { { WorkStamps.WorkHeader, next.Stamp } }, cancellationToken: cancellationToken).ResponseAsync) && n == 0)
                    {
                        _admitted[address].Add(next.Identity);
                    }
                }
            }
        }

        public async Task MailFloodAsync(int address, CancellationToken cancellationToken)
        {
            var client = Client(address);
            // An attacker's session per address, with an identity admitted in the fresh-key phase (the
            // address has spent its hour's budget of new ones), or a fresh one if it has none.
            (PeerIdentity Identity, string Stamp) me;
            lock (_fresh[address])
            {
                me = _admitted[address].Count > 0 ? (_admitted[address][0], "0000000000000000") : _fresh[address].Count > 0 ? _fresh[address].Dequeue() : _unstamped[address][0];
            }

            AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> call;
            Metadata token;
            try
            {
                (call, token) = await OpenSessionAsync(client, me.Identity, Convert.FromHexString(me.Stamp), null, cancellationToken);
            }
            catch (RpcException ex)
            {
                Count(ex.StatusCode);
                return;
            }

            using var session = call;
            // The attacker keeps its session up (heartbeats, answers drained) while it floods.
            _ = Task.Run(async () =>
            {
                for (ulong beat = 1; !cancellationToken.IsCancellationRequested; beat++)
                {
                    await call.RequestStream.WriteAsync(new SessionClientMessage { Heartbeat = new Heartbeat { Sequence = beat } }, cancellationToken);
                    await Task.Delay(1000, cancellationToken);
                }
            }, cancellationToken);
            _ = Task.Run(async () =>
            {
                while (await call.ResponseStream.MoveNext(cancellationToken))
                {
                }
            }, cancellationToken);
            var item = SealedBoxes.Seal(new byte[30 * 1024], _honest.Recipient.PublicKey);
            while (!cancellationToken.IsCancellationRequested)
            {
                await CountAsync(() => client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = _honest.Recipient.Id.ToString(), Item = item }, token, cancellationToken: cancellationToken).ResponseAsync);
            }
        }

        public async Task MalformedAsync(int address, CancellationToken cancellationToken)
        {
            var invoker = _channels[address].CreateCallInvoker();
            var raw = Marshallers.Create<byte[]>(b => b, b => b);
            (string Service, string Method)[] methods =
            [
                ("hybrid.v1.ListingsApi", "PublishListing"), ("hybrid.v1.ListingsApi", "Search"), ("hybrid.v1.DirectoryApi", "LookupPeer"),
                ("hybrid.v1.ReputationApi", "SubmitReview"), ("hybrid.v1.ListingsApi", "GetListing"), ("hybrid.v1.MailboxApi", "DepositMail"),
            ];
            var random = new Random(address);
            for (var i = 0; !cancellationToken.IsCancellationRequested; i++)
            {
                var body = new byte[random.Next(1, 512)];
                random.NextBytes(body);
                body[0] = 0x0F; // wire type 7: never parses
                var method = new Method<byte[], byte[]>(MethodType.Unary, methods[i % methods.Length].Service, methods[i % methods.Length].Method, raw, raw);
                await CountAsync(() => invoker.AsyncUnaryCall(method, null, new CallOptions(cancellationToken: cancellationToken), body).ResponseAsync);
            }
        }

        public void Dispose()
        {
            _channels.ForEach(c => c.Dispose());
            foreach (var queue in _fresh)
            {
                foreach (var (identity, _) in queue)
                {
                    identity.Dispose();
                }
            }
        }

        private Protocol.Api.SupernodeClients Client(int address) => new(_channels[address]);

        /// <summary>Makes one call and counts its status; true when it was answered OK.</summary>
        private async Task<bool> CountAsync(Func<Task> call)
        {
            try
            {
                await call();
                Count(StatusCode.OK);
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled)
            {
                Count(ex.StatusCode);
            }
            catch (RpcException)
            {
                // The phase ended.
            }

            return false;
        }

        private void Count(StatusCode code)
        {
            lock (_counts)
            {
                _counts[code] = _counts.GetValueOrDefault(code) + 1;
            }
        }
    }
}
