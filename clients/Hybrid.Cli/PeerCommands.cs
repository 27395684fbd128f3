using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Hybrid.Client.Daemon;
using Hybrid.Client.Home;
using Hybrid.Protocol.Content;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Identity;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Hybrid.Cli;

/// <summary>The daemon and the commands that go through it: chat, orders, fetch, status.</summary>
internal static class PeerCommands
{
    public static Command Run()
    {
        var listen = new Option<string?>("--listen") { Description = "IP:PORT for this peer's own host (saved), e.g. 0.0.0.0:7400." };
        var advertise = new Option<string?>("--advertise") { Description = "HOST:PORT other peers should dial instead (a forwarded port; saved)." };
        var privacy = new Option<bool>("--private") { Description = "Privacy mode: advertise no address; every peer link goes through a relay, so counterparties never learn your IP." };
        var uploadRate = new Option<string?>("--max-upload-rate") { Description = "Cap on goods data sent, e.g. 5MB (per second)." };
        var run = new Command("run", "Run this peer until Ctrl+C: a session with the supernode network, the peer host, relays and mailbox, and the local control socket the other commands use.") { listen, advertise, privacy, uploadRate };
        run.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            var settings = SaveNetworkSettings(context, parse.GetValue(listen), parse.GetValue(advertise), parse.GetValue(privacy));
            using var logging = ConsoleLogging(LogLevel.Information);
            await using var daemon = await StartDaemonAsync(context, identity, settings, ParseRate(parse.GetValue(uploadRate)), logging, cancellationToken);
            Console.WriteLine($"{identity.Id} ({settings.DisplayName}) peer host on {daemon.HostEndPoint}{(settings.Private ? " (private: relayed only)" : string.Empty)}; advertising {(daemon.Endpoints.Count == 0 ? "no address" : string.Join(", ", daemon.Endpoints))}");
            Console.WriteLine($"connecting to {string.Join(", ", settings.Supernodes)}; control socket {daemon.ControlSocketPath}");
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Console.WriteLine("offline");
            }

            return ExitCodes.Ok;
        }));
        return run;
    }

    public static Command Chat()
    {
        var peer = new Argument<string>("peer-id") { Description = "Who to write to." };
        var text = new Argument<string>("text") { Description = "The message." };
        var send = new Command("send", "Send a message: directly, else relayed, else left sealed in the peer's mailbox.") { peer, text };
        send.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var to = ParsePeer(parse.GetValue(peer));
            var sent = await context.ControlAsync(c => c.SendChatAsync(new SendChatRequest { PeerId = to, Text = parse.GetValue(text)! }, cancellationToken: cancellationToken).ResponseAsync);
            context.Write(Json(sent), () => Console.WriteLine($"sent #{sent.Sequence} ({sent.Status})"));
            return ExitCodes.Ok;
        }));

        var from = new Argument<string?>("peer-id") { Description = "Only this conversation.", Arity = ArgumentArity.ZeroOrOne };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new messages." };
        var last = new Option<int>("--last") { Description = "How many of the latest messages to show first (at most 1000).", DefaultValueFactory = _ => 200 };
        var read = new Command("read", "Show the latest messages, oldest first.") { from, follow, last };
        read.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var peerId = parse.GetValue(from) is { } given ? ParsePeer(given) : string.Empty;
            var following = parse.GetValue(follow);
            return await context.ControlAsync(async c =>
            {
                using var call = c.ReadChat(new ReadChatRequest { PeerId = peerId, Follow = following, Limit = parse.GetValue(last), Newest = true }, cancellationToken: cancellationToken);
                var all = new List<object>();
                try
                {
                    await foreach (var entry in call.ResponseStream.ReadAllAsync(cancellationToken))
                    {
                        if (context.JsonOutput && !following)
                        {
                            all.Add(Json(entry));
                        }
                        else if (context.JsonOutput)
                        {
                            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(Json(entry)));
                        }
                        else
                        {
                            var when = DateTimeOffset.FromUnixTimeMilliseconds(entry.SentMs).ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
                            Console.WriteLine($"{when} {(entry.Direction == "in" ? "<" : ">")} {entry.PeerId[..15]}… {entry.Text}{(entry.Direction == "out" ? $"  [{entry.Status}]" : string.Empty)}");
                        }
                    }
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
                {
                    // Ctrl+C while following.
                }

                if (context.JsonOutput && !following)
                {
                    context.Write(all, () => { });
                }

                return ExitCodes.Ok;
            });
        }));
        return new Command("chat", "Talk to another peer directly.") { send, read };
    }

    public static Command Order()
    {
        var listing = new Argument<string>("listing-id");
        var quantity = new Option<uint>("--quantity") { Description = "How many.", DefaultValueFactory = _ => 1 };
        var mediator = new Option<string>("--mediator") { Description = "The mediator for a dispute: one of the PeerIds the listing names (default: its first)." };
        var create = new Command("create", "Offer to buy a listing: a signed offer goes to the seller.") { listing, quantity, mediator };
        create.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var view = await context.ControlAsync(c => c.CreateOrderAsync(new CreateOrderRequest { ListingId = parse.GetValue(listing)!, Quantity = parse.GetValue(quantity), Mediator = parse.GetValue(mediator) ?? string.Empty }, cancellationToken: cancellationToken).ResponseAsync);
            context.Write(Json(view), () => Console.WriteLine(view.OrderId));
            return ExitCodes.Ok;
        }));

        // One signed step: the order's id, the options the step takes, and the control call.
        Command Step(string name, string description, Func<Control.ControlClient, OrderRef, CancellationToken, AsyncUnaryCall<OrderView>> call, Action<ParseResult, OrderRef>? fill = null, params Option[] options)
        {
            var orderId = new Argument<string>("order-id");
            var command = new Command(name, description) { orderId };
            foreach (var option in options)
            {
                command.Options.Add(option);
            }

            command.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
            {
                var context = new CliContext(parse);
                var request = new OrderRef { OrderId = parse.GetValue(orderId)! };
                fill?.Invoke(parse, request);
                var view = await context.ControlAsync(c => call(c, request, cancellationToken).ResponseAsync);
                context.Write(Json(view), () => Console.WriteLine($"{view.OrderId} {view.State} ({view.Delivery})"));
                return ExitCodes.Ok;
            }));
            return command;
        }

        Option<string> Text(string name, string description, bool required = false) => new(name) { Description = description, Required = required };
        var payment = Text("--payment", "How the buyer pays you, outside the network (shown to the buyer; at most 500 characters).");
        var autoComplete = new Option<uint>("--auto-complete-days") { Description = "Days after you mark it fulfilled that a silent buyer's order completes itself (default 14)." };
        var declineReason = Text("--reason", "Why not (the buyer sees it).", required: true);
        var cancelReason = Text("--reason", "Why (the other side sees it).", required: true);
        var disputeReason = Text("--reason", "What went wrong (the other side and the mediator see it).", required: true);
        var paidNote = Text("--note", "The payment's reference, or anything the seller should know.");
        var carrier = Text("--carrier", "Physical goods: the carrier.");
        var tracking = Text("--tracking", "Physical goods: the tracking reference.");
        var contentId = Text("--content-id", "Digital goods: the content id delivered (default: the listing's).");
        var serviceAt = new Option<DateTimeOffset?>("--service-at") { Description = "Services: when (e.g. 2026-12-03T10:00:00Z)." };
        var place = Text("--place", "Services: where.");
        var fulfilNote = Text("--note", "Anything the buyer should know.");
        var unsatisfied = new Option<bool>("--unsatisfied") { Description = "Complete it, but say you were not satisfied (the receipt records it)." };
        var outcome = new Option<string>("--for") { Description = "Who the verdict is for: buyer, seller or split.", Required = true };
        outcome.AcceptOnlyFromAmong("buyer", "seller", "split");
        var share = new Option<uint>("--buyer-share") { Description = "For a split: the buyer's share of the price, in percent (1-99)." };
        var verdictNote = Text("--note", "Why (both sides see it).");

        var evidenceOrder = new Argument<string>("order-id");
        var evidenceText = new Option<string>("--text") { Description = "What happened, for the mediator.", Required = true };
        var evidencePhotos = new Option<FileInfo[]>("--photo") { Description = "A photo for the mediator (repeatable; re-encoded without metadata, served by this peer).", DefaultValueFactory = _ => [] };
        var evidence = new Command("evidence", "As buyer or seller of a disputed order: send the mediator your account and photos (a chat message; the photos are fetched from you).") { evidenceOrder, evidenceText, evidencePhotos };
        evidence.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var order = await context.ControlAsync(c => c.GetOrderAsync(new OrderRef { OrderId = parse.GetValue(evidenceOrder)! }, cancellationToken: cancellationToken).ResponseAsync);
            if (order.Role == "mediator" || order.Mediator.Length == 0)
            {
                throw new CliException(ExitCodes.Refused, order.Role == "mediator" ? "you are this order's mediator" : $"order {order.OrderId} names no mediator");
            }

            var status = await context.ControlAsync(c => c.StatusAsync(new StatusRequest(), cancellationToken: cancellationToken).ResponseAsync);
            var text = new System.Text.StringBuilder($"Evidence for order {order.OrderId} ({order.Title}), from its {order.Role}: {parse.GetValue(evidenceText)}");
            var photos = new List<string>();
            foreach (var photo in parse.GetValue(evidencePhotos)!)
            {
                try
                {
                    var registered = await Hybrid.Client.Market.MarketActions.RegisterPhotoAsync(context.Home.Path, photo.FullName, cancellationToken);
                    photos.Add(registered.ContentId);
                    text.Append(CultureInfo.InvariantCulture, $"\nphoto: {registered.ContentId} (hybrid fetch {registered.ContentId} --from {status.PeerId})");
                }
                catch (Hybrid.Client.Market.PhotoRejectedException ex)
                {
                    throw new CliException(ExitCodes.Usage, $"photo {photo.Name}: {ex.Message}");
                }
            }

            var sent = await context.ControlAsync(c => c.SendChatAsync(new SendChatRequest { PeerId = order.Mediator, Text = text.ToString() }, cancellationToken: cancellationToken).ResponseAsync);
            context.Write(new { orderId = order.OrderId, mediator = order.Mediator, status = sent.Status, photos }, () => Console.WriteLine($"sent to the mediator ({sent.Status})"));
            return ExitCodes.Ok;
        }));

        var show = new Command("show", "One order: its state, deadline and every signed step.") { new Argument<string>("order-id") };
        show.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var view = await context.ControlAsync(c => c.GetOrderAsync(new OrderRef { OrderId = parse.GetValue<string>("order-id")! }, cancellationToken: cancellationToken).ResponseAsync);
            context.Write(Json(view), () =>
            {
                Console.WriteLine($"{view.OrderId} {view.Title}: {view.State} (you are the {view.Role})");
                if (view.PaymentInstructions.Length > 0)
                {
                    Console.WriteLine($"payment: {view.PaymentInstructions}");
                }

                if (view.DeadlineMs > 0)
                {
                    Console.WriteLine($"{view.Deadline}: {DateTimeOffset.FromUnixTimeMilliseconds(view.DeadlineMs):u}");
                }

                var table = new Table().AddColumns("step", "by", "at", "detail");
                foreach (var step in view.Timeline)
                {
                    table.AddRow(step.Step, step.By, DateTimeOffset.FromUnixTimeMilliseconds(step.AtMs).ToString("u", CultureInfo.InvariantCulture), Markup.Escape(step.Detail));
                }

                AnsiConsole.Write(table);
            });
            return ExitCodes.Ok;
        }));

        var limit = new Option<int>("--limit") { Description = "Show at most this many (the most recently changed).", DefaultValueFactory = _ => 50 };
        var all = new Option<bool>("--all") { Description = "Show every order, fetched a page at a time." };
        var list = new Command("list", "Your orders, as buyer and as seller, the most recently changed first.") { limit, all };
        list.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var wanted = parse.GetValue(all) ? int.MaxValue : parse.GetValue(limit);
            if (wanted < 1)
            {
                throw new CliException(ExitCodes.Usage, "--limit is 1 or more");
            }

            var orders = new List<OrderView>();
            var token = string.Empty;
            do
            {
                var request = new ListOrdersRequest { PageSize = Math.Min(500, wanted - orders.Count), PageToken = token };
                var reply = await context.ControlAsync(c => c.ListOrdersAsync(request, cancellationToken: cancellationToken).ResponseAsync);
                orders.AddRange(reply.Orders);
                token = reply.NextPageToken;
            }
            while (token.Length > 0 && orders.Count < wanted);

            context.Write(orders.Select(Json).ToList(), () =>
            {
                var table = new Table().AddColumns("order", "role", "title", "price", "qty", "state", "with");
                foreach (var o in orders)
                {
                    table.AddRow(Markup.Escape(o.OrderId), o.Role, Markup.Escape(o.Title), Markup.Escape(o.Price), o.Quantity.ToString(CultureInfo.InvariantCulture), o.State, Markup.Escape(o.Counterparty[..15] + "…"));
                }

                AnsiConsole.Write(table);
                if (token.Length > 0)
                {
                    Console.WriteLine($"(the {orders.Count} most recent; --all shows every order)");
                }
            });
            return ExitCodes.Ok;
        }));
        return new Command("order", "Buy and sell: offer, accept or decline, pay, fulfil, complete, cancel or dispute; every step is signed, and the result is a receipt signed by both.")
        {
            create,
            Step("accept", "As seller: accept an offer, with how to pay you.", (c, r, ct) => c.AcceptOrderAsync(r, cancellationToken: ct),
                (p, r) => (r.Text, r.AutoCompleteDays) = (p.GetValue(payment) ?? string.Empty, p.GetValue(autoComplete)), payment, autoComplete),
            Step("decline", "As seller: decline an offer, with a reason.", (c, r, ct) => c.DeclineOrderAsync(r, cancellationToken: ct),
                (p, r) => r.Text = p.GetValue(declineReason)!, declineReason),
            Step("pay", "As buyer: mark an accepted order paid (you pay outside the network, as the seller's instructions say).", (c, r, ct) => c.PayOrderAsync(r, cancellationToken: ct),
                (p, r) => r.Text = p.GetValue(paidNote) ?? string.Empty, paidNote),
            Step("fulfil", "As seller: mark an order fulfilled: shipped (--carrier, --tracking), delivered as data (--content-id), or a service (--service-at, --place).", (c, r, ct) => c.FulfilOrderAsync(r, cancellationToken: ct),
                (p, r) =>
                {
                    (r.Carrier, r.Tracking, r.ContentId, r.Place, r.Text) = (p.GetValue(carrier) ?? string.Empty, p.GetValue(tracking) ?? string.Empty, p.GetValue(contentId) ?? string.Empty, p.GetValue(place) ?? string.Empty, p.GetValue(fulfilNote) ?? string.Empty);
                    r.ServiceAtMs = p.GetValue(serviceAt)?.ToUnixTimeMilliseconds() ?? 0;
                },
                carrier, tracking, contentId, serviceAt, place, fulfilNote),
            Step("complete", "As buyer: confirm the order was fulfilled (co-signs the receipt).", (c, r, ct) => c.CompleteOrderAsync(r, cancellationToken: ct),
                (p, r) => r.Unsatisfied = p.GetValue(unsatisfied), unsatisfied),
            Step("cancel", "As buyer or seller: cancel an order before it is fulfilled, with a reason.", (c, r, ct) => c.CancelOrderAsync(r, cancellationToken: ct),
                (p, r) => r.Text = p.GetValue(cancelReason)!, cancelReason),
            Step("dispute", "As buyer or seller: open a dispute; the order's mediator decides it.", (c, r, ct) => c.DisputeOrderAsync(r, cancellationToken: ct),
                (p, r) => r.Text = p.GetValue(disputeReason)!, disputeReason),
            evidence,
            Step("decide", "As the mediator of a disputed order: sign the verdict (for the buyer, the seller, or a split).", (c, r, ct) => c.DecideOrderAsync(r, cancellationToken: ct),
                (p, r) => (r.Outcome, r.BuyerSharePercent, r.Text) = (p.GetValue(outcome)!, p.GetValue(share), p.GetValue(verdictNote) ?? string.Empty), outcome, share, verdictNote),
            show,
            list,
        };
    }

    public static Command Fetch()
    {
        var what = new Argument<string>("order-or-content-id") { Description = "An accepted order's id, or a free content id (sha256:…) with --from." };
        var from = new Option<string?>("--from") { Description = "The seller serving a free content id." };
        var output = new Option<string?>("--out") { Description = "Where to write the file." };
        var command = new Command("fetch", "Download goods data from the seller, verified chunk by chunk; resumes where it stopped.") { what, from, output };
        command.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var id = parse.GetValue(what)!;
            var request = new FetchRequest { OutPath = parse.GetValue(output) is { } o ? Path.GetFullPath(o) : string.Empty };
            if (ContentManifests.IsContentId(id))
            {
                request.ContentId = id;
                request.FromPeer = parse.GetValue(from) is { } seller ? ParsePeer(seller) : throw new CliException(ExitCodes.Usage, "a content id needs --from SELLER_PEERID");
            }
            else
            {
                request.OrderId = id;
            }

            var last = await context.ControlAsync(async c =>
            {
                using var call = c.Fetch(request, cancellationToken: cancellationToken);
                FetchProgress? latest = null;
                if (context.JsonOutput || Console.IsOutputRedirected)
                {
                    await foreach (var p in call.ResponseStream.ReadAllAsync(cancellationToken))
                    {
                        latest = p;
                    }
                }
                else
                {
                    await AnsiConsole.Progress().StartAsync(async progress =>
                    {
                        var task = progress.AddTask("fetching", maxValue: 1);
                        await foreach (var p in call.ResponseStream.ReadAllAsync(cancellationToken))
                        {
                            latest = p;
                            task.MaxValue = Math.Max(1, p.TotalBytes);
                            task.Value = p.ReceivedBytes;
                            task.Description = $"{p.Path}, attempt {p.Attempt}";
                        }
                    });
                }

                return latest ?? throw new CliException(ExitCodes.Unreachable, "the daemon ended the download without a word");
            });
            context.Write(Json(last), () => Console.WriteLine($"{last.File} ({last.TotalBytes} bytes, verified{(last.ResumedFromBytes > 0 ? $", resumed from {last.ResumedFromBytes}" : string.Empty)})"));
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Status()
    {
        var command = new Command("status", "The supernode in use and, for each open peer link, whether it is direct or relayed.");
        command.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var status = await context.ControlAsync(c => c.StatusAsync(new StatusRequest(), cancellationToken: cancellationToken).ResponseAsync);
            context.Write(
                new
                {
                    peerId = status.PeerId,
                    name = status.DisplayName,
                    supernode = status.Supernode,
                    endpoints = status.Endpoints,
                    observedAddress = status.ObservedAddress,
                    reachability = status.Reachability is { } r
                        ? new { reachable = r.Reachable, supernode = r.Supernode, @checked = DateTimeOffset.FromUnixTimeMilliseconds(r.CheckedMs), endpoints = r.Endpoints.Select(e => new { url = e.Url, reachable = e.Reachable, reason = e.Reason }) }
                        : null,
                    @private = status.Private,
                    mailboxPending = status.MailboxPending,
                    mailRefused = status.MailRefused,
                    forgedAnswers = status.ForgedAnswers,
                    peerCallsRefused = status.PeerCallsRefused,
                    logFile = status.LogFile,
                    events = status.Events,
                    refused = status.Refused.Select(r => new { itemId = r.ItemId, sender = r.Sender, reason = r.Reason, refused = DateTimeOffset.FromUnixTimeMilliseconds(r.RefusedMs) }),
                    links = status.Links.Select(l => new { peerId = l.PeerId, path = l.Path, address = l.Address, why = l.Why }),
                },
                () =>
                {
                    Console.WriteLine($"{status.PeerId} ({status.DisplayName}){(status.Private ? " private" : string.Empty)}");
                    Console.WriteLine(string.IsNullOrEmpty(status.Supernode) ? "supernode: none (reconnecting)" : $"supernode: {status.Supernode}");
                    Console.WriteLine($"advertised: {(status.Endpoints.Count == 0 ? "none" : string.Join(", ", status.Endpoints))}");
                    if (status.Reachability is { } reachability)
                    {
                        Console.WriteLine(reachability.Reachable
                            ? $"reachable directly (dialed back by {reachability.Supernode}; seen from {status.ObservedAddress})"
                            : $"not reachable directly (seen from {status.ObservedAddress}): other peers reach this one through a relay");
                        foreach (var endpoint in reachability.Endpoints.Where(e => !e.Reachable))
                        {
                            Console.WriteLine($"  {endpoint.Url}: {endpoint.Reason}");
                        }
                    }

                    foreach (var link in status.Links)
                    {
                        Console.WriteLine($"link {link.PeerId}: {link.Path} via {link.Address} ({link.Why})");
                    }

                    Console.WriteLine($"messages waiting in mailboxes: {status.MailboxPending}");
                    if (status.PeerCallsRefused > 0)
                    {
                        Console.WriteLine($"calls from other peers refused by their budgets: {status.PeerCallsRefused}");
                    }

                    if (status.ForgedAnswers > 0)
                    {
                        Console.WriteLine($"supernode answers dropped as forged: {status.ForgedAnswers}");
                    }

                    foreach (var happened in status.Events.TakeLast(5))
                    {
                        Console.WriteLine($"  {happened}");
                    }

                    if (status.MailRefused > 0)
                    {
                        Console.WriteLine($"mailbox items refused: {status.MailRefused}");
                        foreach (var refused in status.Refused)
                        {
                            Console.WriteLine($"  {DateTimeOffset.FromUnixTimeMilliseconds(refused.RefusedMs):u} from {refused.Sender}: {refused.Reason}");
                        }
                    }

                    Console.WriteLine($"log: {status.LogFile}");
                });
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Saves the supernodes and peer-host settings given on the command line (kept for next time).</summary>
    public static PeerSettings SaveNetworkSettings(CliContext context, string? listen, string? advertise, bool privacy)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = context.Home.LoadSettings();
        settings.Supernodes = [.. context.Supernodes()];
        settings.Listen = listen ?? settings.Listen;
        settings.Advertise = advertise ?? settings.Advertise;
        settings.Private = privacy;
        context.Home.SaveSettings(settings);
        return settings;
    }

    /// <summary>Single-line console logging at <paramref name="level"/>.</summary>
    public static ILoggerFactory ConsoleLogging(LogLevel level) =>
        LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; }).SetMinimumLevel(level));

    /// <summary>Starts this home's daemon in this process.</summary>
    public static Task<PeerDaemon> StartDaemonAsync(CliContext context, PeerIdentity identity, PeerSettings settings, long maxUploadBytesPerSecond, ILoggerFactory logging, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(settings);
        return PeerDaemon.StartAsync(identity, new PeerDaemonOptions
        {
            HomePath = context.Home.Path,
            Supernodes = settings.Supernodes,
            DisplayName = settings.DisplayName,
            Listen = settings.Listen,
            Advertise = settings.Advertise,
            Private = settings.Private,
            MaxUploadBytesPerSecond = maxUploadBytesPerSecond,
            Budgets = settings.Budgets ?? new(),
            LoggerFactory = logging,
        }, cancellationToken);
    }

    private static string ParsePeer(string? text) =>
        PeerId.TryParse(text, out var peer, out var error) ? peer.ToString() : throw new CliException(ExitCodes.Usage, error);

    private static long ParseRate(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return 0;
        }

        var t = text.Trim().ToUpperInvariant();
        var (digits, factor) = t.EndsWith("MB", StringComparison.Ordinal) ? (t[..^2], 1_000_000L) : t.EndsWith("KB", StringComparison.Ordinal) ? (t[..^2], 1_000L) : (t, 1L);
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value * factor
            : throw new CliException(ExitCodes.Usage, $"'{text}' is not a rate such as 500KB or 5MB");
    }

    private static object Json(ChatEntry e) => new { peerId = e.PeerId, direction = e.Direction, sequence = e.Sequence, text = e.Text, sentMs = e.SentMs, status = e.Status, cursor = e.Cursor };

    private static object Json(FetchProgress p) => new { file = p.File, contentId = p.ContentId, totalBytes = p.TotalBytes, resumedFromBytes = p.ResumedFromBytes, attempts = p.Attempt, path = p.Path, done = p.Done };

    private static object Json(OrderView o) => new
    {
        orderId = o.OrderId,
        role = o.Role,
        counterparty = o.Counterparty,
        listingId = o.ListingId,
        title = o.Title,
        price = o.Price,
        quantity = o.Quantity,
        state = o.State,
        contentId = o.ContentId,
        delivery = o.Delivery,
        mediator = o.Mediator.Length > 0 ? o.Mediator : null,
        paymentInstructions = o.PaymentInstructions.Length > 0 ? o.PaymentInstructions : null,
        deadlineMs = o.DeadlineMs > 0 ? o.DeadlineMs : (long?)null,
        deadline = o.Deadline.Length > 0 ? o.Deadline : null,
        timeline = o.Timeline.Select(t => new { step = t.Step, by = t.By, atMs = t.AtMs, detail = t.Detail }).ToList(),
        receipt = o.Receipt.IsEmpty ? null : o.Receipt.ToBase64(),
    };
}
