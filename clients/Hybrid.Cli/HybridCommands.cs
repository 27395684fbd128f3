using System.CommandLine;
using System.Globalization;
using Google.Protobuf;
using Hybrid.Client.Market;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Spectre.Console;

namespace Hybrid.Cli;

/// <summary>The <c>hybrid</c> command tree.</summary>
internal static class HybridCommands
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Hybrid: buy, sell and talk directly, person to person.")
        {
            Init(), Id(), Peer(), ListingCommands(), Search(),
            PeerCommands.Chat(), PeerCommands.Order(), PeerCommands.Fetch(), PeerCommands.Status(),
            ReputationCommands.Review(), ReputationCommands.Reputation(), DesktopCommand.Create(),
        };
        root.Options.Add(CliContext.HomeOption);
        root.Options.Add(CliContext.JsonOption);
        root.Options.Add(CliContext.SupernodeOption);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            await Console.Error.WriteLineAsync($"hybrid: {parse.Errors[0].Message} (see 'hybrid --help')");
            return ExitCodes.Usage;
        }

        return await parse.InvokeAsync();
    }

    private static Command Init()
    {
        var name = new Option<string>("--name") { Description = "The name other peers see.", DefaultValueFactory = _ => Environment.UserName };
        var command = new Command("init", "Create this user's identity (a key pair) and print its PeerId.") { name };
        command.SetAction((parse, _) => CliContext.GuardAsync(() =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.CreateIdentity();
            var settings = context.Home.LoadSettings();
            settings.DisplayName = parse.GetValue(name)!;
            context.Home.SaveSettings(settings);
            context.Write(new { peerId = identity.Id.ToString(), name = settings.DisplayName, home = context.Home.Path }, () => Console.WriteLine(identity.Id));
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    private static Command Id()
    {
        var command = new Command("id", "Print this user's PeerId.");
        command.SetAction((parse, _) => CliContext.GuardAsync(() =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            var settings = context.Home.LoadSettings();
            context.Write(new { peerId = identity.Id.ToString(), name = settings.DisplayName }, () => Console.WriteLine(identity.Id));
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    private static Command Peer()
    {
        var run = PeerCommands.Run();
        var peerId = new Argument<string>("peer-id") { Description = "The PeerId to look up." };
        var lookup = new Command("lookup", "Show a peer: name, online, endpoints, last seen.") { peerId };
        lookup.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            if (!PeerId.TryParse(parse.GetValue(peerId), out var id, out var error))
            {
                throw new CliException(ExitCodes.Usage, error);
            }

            using var caller = context.Caller();
            var info = await caller.LookupPeerAsync(id, cancellationToken);
            var lastSeen = DateTimeOffset.FromUnixTimeMilliseconds(info.LastSeenMs);
            context.Write(
                new { peerId = info.PeerId, name = info.DisplayName, online = info.Online, endpoints = info.Endpoints.Select(e => e.Url), lastSeen, supernode = info.SupernodeUrl },
                () => Console.WriteLine($"{info.PeerId}  {info.DisplayName}  {(info.Online ? "online via " + info.SupernodeUrl : "offline, last seen " + lastSeen.ToString("u", CultureInfo.InvariantCulture))}"));
            return ExitCodes.Ok;
        }));
        return new Command("peer", "Run this peer, or look up another.") { run, lookup };
    }

    private static Command ListingCommands()
    {
        var title = new Option<string>("--title") { Description = "What is offered.", Required = true };
        var price = new Option<string>("--price") { Description = "Price, e.g. 12.50.", Required = true };
        var currency = new Option<string>("--currency") { Description = "ISO 4217 code, e.g. EUR.", Required = true };
        var category = new Option<string>("--category") { Description = $"One of: {string.Join(", ", ListingRules.Categories)}.", DefaultValueFactory = _ => "other" };
        var location = new Option<string?>("--location") { Description = "COUNTRY[/REGION[/GEOHASH]], e.g. DE/Berlin." };
        var description = new Option<string>("--description") { Description = "Longer text.", DefaultValueFactory = _ => string.Empty };
        var tags = new Option<string[]>("--tag") { Description = "A free tag (repeatable).", DefaultValueFactory = _ => [] };
        var quantity = new Option<uint>("--quantity") { Description = "How many are on offer.", DefaultValueFactory = _ => 1 };
        var days = new Option<int>("--days") { Description = "Days until the listing expires (1-90).", DefaultValueFactory = _ => 30 };
        var file = new Option<FileInfo?>("--file") { Description = "Goods data (a digital good) this peer serves to buyers with an accepted order (to anyone if the price is 0)." };
        var mediators = new Option<string[]>("--mediator") { Description = $"PeerId of a mediator you accept for disputes (repeatable, at most {ListingRules.MaxMediators}); buyers pick one when they order.", DefaultValueFactory = _ => [] };
        var photos = new Option<FileInfo[]>("--photo") { Description = $"A photo (repeatable, at most {ListingRules.MaxPhotos}; the first is the cover). It is re-encoded here, which drops its metadata (a phone photo's GPS position among it); its thumbnail travels with the listing, the full image is served by this peer.", DefaultValueFactory = _ => [] };
        var publish = new Command("publish", "Sign and publish a listing; prints its id.") { title, price, currency, category, location, description, tags, quantity, days, file, mediators, photos };
        publish.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            var listing = new Listing
            {
                ListingId = ListingRules.NewListingId(),
                Title = parse.GetValue(title)!,
                Description = parse.GetValue(description)!,
                Price = ListingRules.ParseMoney(parse.GetValue(price)!, parse.GetValue(currency)!.ToUpperInvariant()),
                Category = parse.GetValue(category)!,
                Location = ParseLocation(parse.GetValue(location)),
                Quantity = parse.GetValue(quantity),
                CreatedMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            };
            listing.Tags.AddRange(parse.GetValue(tags)!);
            listing.Mediators.AddRange(parse.GetValue(mediators)!);
            var photoFiles = parse.GetValue(photos)!;
            if (photoFiles.Length > ListingRules.MaxPhotos)
            {
                throw new CliException(ExitCodes.Usage, $"{photoFiles.Length} photos; a listing has at most {ListingRules.MaxPhotos}");
            }

            foreach (var photo in photoFiles)
            {
                try
                {
                    listing.Photos.Add(await MarketActions.RegisterPhotoAsync(context.Home.Path, photo.FullName, cancellationToken));
                }
                catch (PhotoRejectedException ex)
                {
                    throw new CliException(ExitCodes.Usage, $"photo {photo.Name}: {ex.Message}");
                }
            }

            if (parse.GetValue(file) is { } goods)
            {
                listing.ContentId = await MarketActions.RegisterGoodsAsync(context.Home.Path, goods.FullName, MarketActions.IsFree(listing.Price), cancellationToken);
            }

            var now = DateTimeOffset.UtcNow;
            var envelope = MarketActions.SignListing(identity, listing, parse.GetValue(days), now);
            var expires = now.AddDays(parse.GetValue(days));
            using var caller = context.Caller();
            var published = await context.WorkStamps(identity).WriteAsync(headers => caller.CallAsync((c, o) => c.Listings.PublishListingAsync(envelope, o.WithHeaders(headers)).ResponseAsync, cancellationToken), cancellationToken);
            context.Write(new { listingId = published.ListingId, version = published.Version, expires, contentId = listing.ContentId, photos = listing.Photos.Select(p => p.ContentId).ToList() }, () => Console.WriteLine(published.ListingId));
            return ExitCodes.Ok;
        }));

        var listingId = new Argument<string>("listing-id");
        var withdraw = new Command("withdraw", "Take one of your listings down.") { listingId };
        withdraw.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            var id = parse.GetValue(listingId)!;
            if (!ListingRules.IsListingId(id, out var error))
            {
                throw new CliException(ExitCodes.Usage, error);
            }

            var envelope = MarketActions.SignWithdrawal(identity, id, DateTimeOffset.UtcNow);
            using var caller = context.Caller();
            await caller.CallAsync((c, o) => c.Listings.WithdrawListingAsync(envelope, o).ResponseAsync, cancellationToken);
            context.Write(new { listingId = id, withdrawn = true }, () => Console.WriteLine($"withdrawn {id}"));
            return ExitCodes.Ok;
        }));

        var mine = new Command("mine", "List your active listings, newest first.");
        mine.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            using var caller = context.Caller();
            var page = await caller.ListBySellerAsync(new ListBySellerRequest { Seller = identity.Id.ToString(), Limit = 100 }, cancellationToken);
            Show(context, [.. page.Listings], page.TotalHits);
            return ExitCodes.Ok;
        }));
        return new Command("listing", "Publish, withdraw and list your listings.") { publish, withdraw, mine };
    }

    private static Command Search()
    {
        var text = new Argument<string>("text") { Description = "Words to find; \"quoted phrases\" match in order." };
        var minPrice = new Option<string?>("--min-price") { Description = "Lowest price (needs --currency)." };
        var maxPrice = new Option<string?>("--max-price") { Description = "Highest price (needs --currency)." };
        var currency = new Option<string?>("--currency") { Description = "Only listings priced in this currency." };
        var category = new Option<string?>("--category") { Description = "Only this category." };
        var location = new Option<string?>("--location") { Description = "COUNTRY[/REGION], e.g. DE/Berlin." };
        var seller = new Option<string?>("--seller") { Description = "Only this seller's PeerId." };
        var sort = new Option<string>("--sort") { Description = "relevance, price, price-desc, newest or distance (from --near).", DefaultValueFactory = _ => "relevance" };
        sort.AcceptOnlyFromAmong("relevance", "price", "price-desc", "newest", "distance");
        var limit = new Option<int>("--limit") { Description = "How many (1-100).", DefaultValueFactory = _ => 20 };
        var minReputation = new Option<int>("--min-reputation") { Description = "Only sellers whose trust score (0-100, see 'hybrid reputation') is at least this.", DefaultValueFactory = _ => 0 };
        var facets = new Option<bool>("--facets") { Description = "Also count all results per category, country and currency, and by price (in --currency)." };
        var near = new Option<string?>("--near") { Description = "A point, LATITUDE,LONGITUDE or a geohash, for --within and --sort distance." };
        var within = new Option<double>("--within") { Description = "Only listings at most this many km from --near." };
        var command = new Command("search", "Search every listing on the network; sellers with more trust rank higher.") { text, minPrice, maxPrice, currency, category, location, seller, sort, limit, minReputation, facets, near, within };
        command.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            var request = new SearchRequest
            {
                Text = parse.GetValue(text)!,
                Category = parse.GetValue(category) ?? string.Empty,
                Seller = parse.GetValue(seller) ?? string.Empty,
                Limit = parse.GetValue(limit),
                MinReputation = parse.GetValue(minReputation),
                Facets = parse.GetValue(facets),
                Sort = parse.GetValue(sort) switch
                {
                    "price" => SearchSort.PriceAscending,
                    "price-desc" => SearchSort.PriceDescending,
                    "newest" => SearchSort.Newest,
                    "distance" => SearchSort.Distance,
                    _ => SearchSort.Relevance,
                },
                Near = ParsePoint(parse.GetValue(near)),
                WithinKm = parse.GetValue(within),
            };
            if (request.Near is null && (request.WithinKm != 0 || request.Sort == SearchSort.Distance))
            {
                throw new CliException(ExitCodes.Usage, "--within and --sort distance need --near LATITUDE,LONGITUDE or --near GEOHASH");
            }

            var code = parse.GetValue(currency)?.ToUpperInvariant();
            if ((parse.GetValue(minPrice) is not null || parse.GetValue(maxPrice) is not null) && code is null)
            {
                throw new CliException(ExitCodes.Usage, "--min-price and --max-price need --currency");
            }

            request.Currency = code ?? string.Empty;
            if (parse.GetValue(minPrice) is { } min)
            {
                request.MinPrice = ListingRules.ParseMoney(min, code!);
            }

            if (parse.GetValue(maxPrice) is { } max)
            {
                request.MaxPrice = ListingRules.ParseMoney(max, code!);
            }

            if (ParseLocation(parse.GetValue(location)) is { } where)
            {
                request.Country = where.Country;
                request.Region = where.Region;
            }

            using var caller = context.Caller();
            var response = await caller.SearchAsync(request, cancellationToken);
            Show(context, [.. response.Hits.Select(h => h.Record)], response.TotalHits, response, request.Near);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static void Show(CliContext context, IReadOnlyList<ListingRecord> records, long total, SearchResponse? search = null, GeoPoint? near = null) => Show(
        context,
        records,
        total,
        search?.Facets,
        string.IsNullOrEmpty(search?.Suggestion) ? null : search.Suggestion,
        [.. search?.DroppedWords ?? []],
        // Distances when the search named a point, measured here from each verified listing's own
        // geohash (a supernode's figure is not taken on trust); none for a listing without a location.
        near is null ? null : [.. records.Select(r => Geo.DistanceKm(near.Latitude, near.Longitude, r.Listing.Location) is { } km ? Math.Round(km, 3) : (double?)null)]);

    private static void Show(CliContext context, IReadOnlyList<ListingRecord> records, long total, SearchFacets? facets, string? suggestion, string[] dropped, double?[]? distances) => context.Write(
        new
        {
            total,
            suggestion,
            droppedWords = dropped,
            facets = facets is null ? null : new
            {
                categories = facets.Categories.Select(c => new { value = c.Value, count = c.Count }),
                countries = facets.Countries.Select(c => new { value = c.Value, count = c.Count }),
                currencies = facets.Currencies.Select(c => new { value = c.Value, count = c.Count }),
                prices = facets.Prices.Select(p => new { min = ListingRules.Format(p.Min), max = p.Max is null ? null : ListingRules.Format(p.Max), count = p.Count }),
            },
            listings = records.Select((r, i) => new
            {
                listingId = r.Listing.ListingId,
                distanceKm = distances?[i],
                title = r.Listing.Title,
                price = ListingRules.Format(r.Listing.Price),
                category = r.Listing.Category,
                location = r.Listing.Location is { } l ? $"{l.Country}/{l.Region}" : string.Empty,
                seller = r.Seller,
                state = r.State.ToString().ToLowerInvariant(),
                quantity = r.Listing.Quantity,
                soldOut = r.Listing.Quantity == 0,
                mediators = r.Listing.Mediators.ToList(),
                // A thumbnail is passed on only if it decodes within the limits here (a crafted one is left out).
                photos = r.Listing.Photos.Select(p => new { contentId = p.ContentId, width = p.Width, height = p.Height, thumbnail = Photos.IsShowableThumbnail(p.Thumbnail) ? p.Thumbnail.ToBase64() : null }).ToList(),
                envelope = r.Envelope.ToByteString().ToBase64(),
            }),
        },
        () =>
        {
            var table = new Table().AddColumns("id", "title", "price", "where", "photos", "seller");
            for (var i = 0; i < records.Count; i++)
            {
                var r = records[i];
                var away = distances?[i] is { } km ? string.Create(CultureInfo.InvariantCulture, $", {km:0.#} km") : string.Empty;
                table.AddRow(
                    Markup.Escape(r.Listing.ListingId),
                    Markup.Escape(r.Listing.Title),
                    Markup.Escape(ListingRules.Format(r.Listing.Price)) + (r.Listing.Quantity == 0 ? " (sold out)" : string.Empty),
                    Markup.Escape(r.Listing.Location is { } l ? $"{l.Country} {l.Region}{away}" : string.Empty),
                    r.Listing.Photos.Count.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(r.Seller[..15] + "…"));
            }

            if (dropped.Length > 0)
            {
                AnsiConsole.WriteLine($"No listing has every word: showing listings without {string.Join(", ", dropped.Select(w => $"'{w}'"))}.");
            }

            AnsiConsole.Write(table);
            AnsiConsole.WriteLine($"{records.Count} of {total}");
            if (suggestion is not null)
            {
                AnsiConsole.WriteLine($"Did you mean: {suggestion}");
            }

            if (facets is not null)
            {
                ShowFacets(facets);
            }
        });

    /// <summary>The counts as a short table: one line per facet, most first.</summary>
    private static void ShowFacets(SearchFacets facets)
    {
        static string Line(IEnumerable<FacetCount> counts) =>
            string.Join("  ", counts.Take(8).Select(c => $"{c.Value} {c.Count.ToString(CultureInfo.InvariantCulture)}"));

        var table = new Table().AddColumns("facet", "counts");
        table.AddRow("category", Markup.Escape(Line(facets.Categories)));
        table.AddRow("country", Markup.Escape(Line(facets.Countries)));
        table.AddRow("currency", Markup.Escape(Line(facets.Currencies)));
        if (facets.Prices.Count > 0)
        {
            table.AddRow("price", Markup.Escape(string.Join("  ", facets.Prices.Select(p => $"{ListingRules.Format(p.Min)}{(p.Max is null ? "+" : "–" + ListingRules.Format(p.Max))} {p.Count.ToString(CultureInfo.InvariantCulture)}"))));
        }

        AnsiConsole.Write(table);
    }

    /// <summary>"52.52,13.40" or a geohash ("u33db") as a point; null for none.</summary>
    private static GeoPoint? ParsePoint(string? text) =>
        string.IsNullOrWhiteSpace(text) ? null
        : Geo.TryParsePoint(text, out var latitude, out var longitude) ? new GeoPoint { Latitude = latitude, Longitude = longitude }
        : throw new CliException(ExitCodes.Usage, $"--near '{text}' is neither LATITUDE,LONGITUDE (e.g. 52.52,13.40) nor a geohash (e.g. u33db)");

    private static Location ParseLocation(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return new Location();
        }

        var parts = text.Split('/', StringSplitOptions.TrimEntries);
        return new Location
        {
            Country = parts[0].ToUpperInvariant(),
            Region = parts.Length > 1 ? parts[1] : string.Empty,
            Geohash = parts.Length > 2 ? parts[2].ToLowerInvariant() : string.Empty,
        };
    }
}
