using System.Net;
using System.Security.Cryptography;
using Google.Protobuf;
using Hybrid.Testing;
using Microsoft.Playwright;

namespace Hybrid.Desktop.Tests;

/// <summary>
/// Two desktop apps (a seller and a buyer, each with its own daemon) and a supernode, driven in a
/// real browser: Debian's chromium through Playwright. Screenshots of each step go to
/// artifacts/screenshots.
/// </summary>
public sealed class DesktopStoryTests : IAsyncLifetime, IDisposable
{
    private static readonly string Screenshots = Path.Combine(BuildOutput.RepositoryRoot, "artifacts", "screenshots");
    private static readonly float Timeout = 30_000;
    private readonly TempDir _temp = new();
    private SupernodeProcess _node = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        _node = await SupernodeProcess.StartAsync(_temp.Sub("sn"), "--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:03");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        });
        Directory.CreateDirectory(Screenshots);
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _node.DisposeAsync();
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ASellerAndABuyerTradeAndReviewThroughTheDesktopApp()
    {
        var seller = await UserAsync("seller", "Sam's Sounds");
        var buyer = await UserAsync("buyer", "Bea");
        await using var sellerApp = await DesktopProcess.StartAsync(seller, _node.GrpcUrl);
        await using var buyerApp = await DesktopProcess.StartAsync(buyer, _node.GrpcUrl);
        var s = await OpenAsync(sellerApp);
        var b = await OpenAsync(buyerApp);

        // The seller publishes a listing with a goods file.
        var goods = _temp.Sub("field-recordings.zip");
        await File.WriteAllBytesAsync(goods, RandomNumberGenerator.GetBytes(3 * 1024 * 1024));
        await s.GotoAsync($"{sellerApp.BaseUrl}/Mine");
        await s.FillAsync("#new-title", "Field recordings from the Alps");
        await s.FillAsync("#new-price", "7.50");
        await s.FillAsync("#new-description", "Two hours of mountain streams, lossless");
        await s.SetInputFilesAsync("#new-goods", goods);
        await s.ClickAsync("#publish");
        await Expect(s.Locator("#notice"), "Published");
        await Shot(s, "1-seller-published");

        // The buyer searches (stemmed: "recording" finds "recordings"), opens the listing, sees the seller.
        await b.GotoAsync(buyerApp.BaseUrl + "/");
        await b.FillAsync("#q", "alps recording");
        await b.ClickAsync("#search");
        await b.ClickAsync("#results a:has-text('Field recordings from the Alps')");
        await Expect(b.Locator("#title"), "Field recordings from the Alps");
        await Expect(b.Locator("#price"), "7.50 EUR");
        await Shot(b, "2-buyer-listing");
        var listingUrl = b.Url;

        // Chat: the seller has the conversation open; the buyer's message appears there without a reload.
        await b.GotoAsync($"{buyerApp.BaseUrl}/Identity");
        var buyerId = (await b.TextContentAsync("#peer-id"))!.Trim();
        await s.GotoAsync($"{sellerApp.BaseUrl}/Chats/{buyerId}");
        await b.GotoAsync(listingUrl);
        await b.ClickAsync("#chat-seller");
        await b.FillAsync("#chat-text", "Hello! Are these recorded in stereo?");
        await b.ClickAsync("#send");
        await Expect(b.Locator("#messages"), "Are these recorded in stereo?");
        await Expect(s.Locator("#messages"), "Are these recorded in stereo?");
        await Shot(s, "3-seller-chat-live");

        // The buyer orders; the seller accepts.
        await b.GotoAsync(listingUrl);
        await b.ClickAsync("#order");
        await Expect(b.Locator("#notice"), "sent to the seller");
        await s.GotoAsync($"{sellerApp.BaseUrl}/Orders");
        await Expect(s.Locator("#orders"), "offered");
        await s.ClickAsync("#orders button.accept");
        await Expect(s.Locator("#notice"), "Accepted");
        await Shot(s, "4-seller-accepted");

        // The buyer downloads (progress bar, verified), confirms and reviews.
        await b.GotoAsync($"{buyerApp.BaseUrl}/Orders");
        await Expect(b.Locator("#orders .state"), "accepted");
        await b.ClickAsync("#orders button.download");
        await Expect(b.Locator(".download-status"), "saved to");
        await Shot(b, "5-buyer-downloaded");
        var saved = (await b.TextContentAsync(".download-status"))!.Replace("saved to ", string.Empty, StringComparison.Ordinal).Trim();
        Assert.Equal(await File.ReadAllBytesAsync(goods), await File.ReadAllBytesAsync(saved));
        await b.ClickAsync("#orders button.complete");
        await Expect(b.Locator("#notice"), "Completed");
        await b.ClickAsync("#orders a.review");
        await b.SelectOptionAsync("#stars", "5");
        await b.FillAsync("#review-text", "Beautiful sound, quick answers");
        await b.ClickAsync("#submit-review");
        await Expect(b.Locator("#notice"), "Review published");

        // The review shows on the seller's listing page, for anyone who opens it.
        await s.GotoAsync(listingUrl.Replace(buyerApp.BaseUrl, sellerApp.BaseUrl, StringComparison.Ordinal));
        await Expect(s.Locator("#reviews"), "Beautiful sound, quick answers");
        await Expect(s.Locator("#reputation"), "1 reviews");
        await Shot(s, "6-review-on-seller-page");

        // The network page says how the peers are linked.
        await b.GotoAsync($"{buyerApp.BaseUrl}/Network");
        await Expect(b.Locator("#links"), "direct");
        await Shot(b, "7-buyer-network");
    }

    [Fact]
    public async Task APhotographedTableIsShippedDisputedAndDecidedByTheMediatorTheListingNames()
    {
        var seller = await UserAsync("seller", "Sam's Furniture");
        var buyer = await UserAsync("buyer", "Bea");
        var mediator = await UserAsync("mediator", "Mia Mediates");
        await using var sellerApp = await DesktopProcess.StartAsync(seller, _node.GrpcUrl);
        await using var buyerApp = await DesktopProcess.StartAsync(buyer, _node.GrpcUrl);
        await using var mediatorApp = await DesktopProcess.StartAsync(mediator, _node.GrpcUrl);
        var (s, b, m) = (await OpenAsync(sellerApp), await OpenAsync(buyerApp), await OpenAsync(mediatorApp));
        await m.GotoAsync($"{mediatorApp.BaseUrl}/Identity");
        var mediatorId = (await m.TextContentAsync("#peer-id"))!.Trim();

        // The seller publishes a physical good with a photo and names the mediator.
        var photo = _temp.Sub("table.jpg");
        await File.WriteAllBytesAsync(photo, TablePhoto());
        await s.GotoAsync($"{sellerApp.BaseUrl}/Mine");
        await s.FillAsync("#new-title", "Walnut side table");
        await s.FillAsync("#new-price", "80");
        await s.FillAsync("#new-mediators", mediatorId);
        await s.SetInputFilesAsync("#new-photos", photo);
        await s.ClickAsync("#publish");
        await Expect(s.Locator("#notice"), "Published");

        // The buyer sees it among the newest, with its thumbnail, and the gallery on its page.
        await b.GotoAsync(buyerApp.BaseUrl + "/");
        await Assertions.Expect(b.Locator("#newest img[alt='Walnut side table']")).ToBeVisibleAsync();
        await AccessibleAsync(b, "the home page");
        await Shot(b, "8-buyer-home-newest");
        await b.ClickAsync("#newest a:has-text('Walnut side table')");
        await Assertions.Expect(b.Locator("#photos img[alt='Photo 1 of Walnut side table']")).ToBeVisibleAsync();
        await Expect(b.Locator("#mediators"), "mediator");
        var full = await b.Context.APIRequest.GetAsync(buyerApp.BaseUrl + (await b.GetAttributeAsync("#photos a", "href")));
        Assert.Equal(("image/jpeg", 1200), (full.Headers["content-type"], SkiaSharp.SKBitmap.Decode(await full.BodyAsync()).Width));
        await Shot(b, "9-buyer-listing-gallery");
        var listingUrl = b.Url;
        await AccessibleAsync(b, "the listing page");
        // Ordered with the keyboard alone: Tab to the button, Enter.
        await KeyboardToAsync(b, "#order");
        await b.Keyboard.PressAsync("Enter");
        await Expect(b.Locator("#notice"), "sent to the seller");

        // Accepted with payment instructions, paid, shipped with a tracking reference.
        await OpenOrderAsync(s, sellerApp);
        await AccessibleAsync(s, "the seller's order page");
        await s.FillAsync("#payment-instructions", "IBAN DE02 1203 0000 0000 2020 51");
        await s.ClickAsync("#accept");
        await Expect(s.Locator("#notice"), "Accepted");
        await OpenOrderAsync(b, buyerApp);
        await Expect(b.Locator("#payment"), "IBAN DE02 1203 0000 0000 2020 51");
        await b.FillAsync("#paid-note", "transfer 5512");
        await b.ClickAsync("#pay");
        await Expect(b.Locator("#notice"), "Marked paid");
        await s.ReloadAsync();
        await s.FillAsync("#carrier", "DHL");
        await s.FillAsync("#tracking", "JJD000390007");
        await s.ClickAsync("#fulfil");
        await Expect(s.Locator("#notice"), "Marked fulfilled");
        await Shot(s, "10-seller-order-timeline");

        // The table arrives cracked: the buyer disputes; the mediator splits the price. The buyer's
        // order page, open since it marked the order paid, shows the shipment without a reload.
        await Expect(b.Locator("#timeline"), "JJD000390007");
        await Expect(b.Locator("#deadline"), "completes itself");
        await b.FillAsync("#dispute-reason", "the table top arrived cracked");
        await b.ClickAsync("#dispute");
        await Expect(b.Locator("#notice"), "Dispute opened");
        await OpenOrderAsync(m, mediatorApp);
        await Expect(m.Locator("#timeline"), "the table top arrived cracked");
        await AccessibleAsync(m, "the mediator's order page");
        await m.SelectOptionAsync("#outcome", "split");
        await m.FillAsync("#share", "30");
        await m.FillAsync("#verdict-note", "cracked in transit; the seller shipped it unpadded");
        await m.ClickAsync("#decide");
        await Expect(m.Locator("#notice"), "Verdict signed");
        await Shot(m, "11-mediator-verdict");
        // Both parties' order pages, open all along, follow live.
        foreach (var page in new[] { b, s })
        {
            await Expect(page.Locator("#order-state"), "decided");
            await Expect(page.Locator("#timeline"), "split, 30% to the buyer");
        }

        await Shot(b, "12-buyer-decided");

        // The decided order backs a review.
        await b.ClickAsync("#write-review");
        await b.SelectOptionAsync("#stars", "3");
        await b.SelectOptionAsync("#verdict", "accept");
        await b.FillAsync("#review-text", "Lovely table; the mediator sorted out the crack fairly");
        await b.ClickAsync("#submit-review");
        await Expect(b.Locator("#notice"), "Review published");

        // The listing shows the mediator's record and how the reviewed order ended.
        await b.GotoAsync(listingUrl);
        await Expect(b.Locator("#mediators"), "1 verdicts");
        await Expect(b.Locator("#reviews .outcome"), "split, 30% to the buyer");
    }

    [Fact]
    public async Task ABuyerNarrowsASearchByItsCountsFollowsDidYouMeanAndFindsWhatIsNearby()
    {
        var seller = await UserAsync("tea-seller", "Tea Trader");
        foreach (var (title, price, category, location) in new[]
        {
            ("Copper teapot", "12", "home", "DE/Berlin/u33dc0"),
            ("Cast iron teapot", "35", "home", "DE/Brandenburg/u33613"),
            ("Porcelain teapot, hand painted", "48.50", "art", "DE/Hamburg/u1x0ek"),
        })
        {
            var published = await seller.RunAsync("listing", "publish", "--title", title, "--price", price, "--currency", "EUR", "--category", category, "--location", location, "--supernode", _node.GrpcUrl);
            Assert.True(published.ExitCode == 0, published.Stderr);
        }

        var buyer = await UserAsync("tea-buyer", "Tess");
        await using var app = await DesktopProcess.StartAsync(buyer, _node.GrpcUrl);
        var b = await OpenAsync(app);

        // Counts beside the results; a count is a link that narrows the search to it.
        await b.FillAsync("#q", "teapot");
        await b.ClickAsync("#search");
        await Expect(b.Locator("#facet-category"), "home (2)");
        await Expect(b.Locator("#facet-category"), "art (1)");
        await Expect(b.Locator("#facet-currency"), "EUR (3)");
        await AccessibleAsync(b, "search results with counts");
        await Shot(b, "search-facets");
        await b.ClickAsync("#facet-category a:has-text('art')");
        await Expect(b.Locator("p.muted"), "1 found");
        await Expect(b.Locator("#results"), "Porcelain teapot");

        // A word no listing has, and a misspelt one: the rest is shown, and the correction offered.
        await b.GotoAsync($"{app.BaseUrl}/?q=teapto+zebra");
        await Expect(b.Locator("#dropped"), "“zebra”");
        await Expect(b.Locator("#suggestion"), "teapot zebra");
        await Expect(b.Locator("p.muted"), "3 found");

        // Nearby, nearest first, with the distance measured from each listing's own location.
        await b.GotoAsync($"{app.BaseUrl}/?q=teapot");
        await b.FillAsync("#near", "52.52,13.405");
        await b.FillAsync("#within", "100");
        await b.SelectOptionAsync("#sort", "distance");
        await b.ClickAsync("#search");
        await Expect(b.Locator("p.muted"), "2 found");
        await Expect(b.Locator("#results tbody tr").First, "Copper teapot");
        await Expect(b.Locator("#results tbody tr").Nth(1), "Cast iron teapot");
        await Expect(b.Locator("#results tbody tr").Nth(1), " km");

        // A distance sort without a place says what is missing.
        await b.GotoAsync($"{app.BaseUrl}/?q=teapot&sort=distance");
        await Expect(b.Locator("div.error"), "needs a place to measure from");
    }

    [Fact]
    public async Task RequestsWithoutTheTokenOrFromAnotherSiteAreRefused()
    {
        var user = await UserAsync("user", "Uma");
        await using var app = await DesktopProcess.StartAsync(user, _node.GrpcUrl);
        using var plain = new HttpClient();

        Assert.Equal(HttpStatusCode.Forbidden, (await plain.GetAsync(new Uri(app.BaseUrl + "/"))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await plain.GetAsync(new Uri(app.BaseUrl + "/?token=wrong"))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await plain.GetAsync(new Uri(app.BaseUrl + "/api/chat?after=0"))).StatusCode);
        using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["id"] = "AAAAAAAAAAAAAAAAAAAAAAAAAA" });
        Assert.Equal(HttpStatusCode.Forbidden, (await plain.PostAsync(new Uri(app.BaseUrl + "/Mine?handler=Withdraw"), form)).StatusCode);

        // With the token (cookie) but without the page's anti-forgery token, a state-changing request is refused too.
        var cookies = new CookieContainer();
        using var handler = new HttpClientHandler { CookieContainer = cookies };
        using var browserLike = new HttpClient(handler);
        Assert.Equal(HttpStatusCode.OK, (await browserLike.GetAsync(new Uri(app.Link))).StatusCode);
        var forged = await browserLike.PostAsync(new Uri(app.BaseUrl + "/Mine?handler=Withdraw"), form);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
    }

    [Fact]
    public async Task ASellerWithThousandsOfOrdersStillSeesThemAPageAtATime()
    {
        // More orders, with their receipts, than one control-API message can hold (4 MiB).
        const int Orders = 5000;
        var user = await UserAsync("busy", "Busy Seller");
        using (var store = new Hybrid.Client.Store.LocalStore(Path.Combine(_temp.Sub("busy"), "store.db")))
        {
            using var buyer = Hybrid.Protocol.Identity.PeerIdentity.Generate();
            using var seller = Hybrid.Protocol.Identity.PeerIdentity.Generate();
            var receipt = Trades.Complete(buyer, seller);
            var (offer, acceptance, completion) = (receipt.Offer.ToByteArray(), receipt.Acceptance.ToByteArray(), receipt.Completion.ToByteArray());
            var start = DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeMilliseconds();
            for (var i = 0; i < Orders; i++)
            {
                store.SaveOrder(new Hybrid.Client.Store.OrderRow(
                    $"order-{i:D5}", "seller", buyer.Id.ToString(), "listing", $"Record no. {i}", "5.00 EUR", 1, "completed", string.Empty, offer, acceptance, completion, start + i, "direct"));
            }
        }

        await using var app = await DesktopProcess.StartAsync(user, _node.GrpcUrl);
        var listed = await user.RunAsync("order", "list", "--all", "--json");
        Assert.True(listed.ExitCode == 0, listed.Stderr);
        using (var all = System.Text.Json.JsonDocument.Parse(listed.Stdout))
        {
            Assert.Equal(Orders, all.RootElement.GetArrayLength());
            Assert.Equal($"order-{Orders - 1:D5}", all.RootElement[0].GetProperty("orderId").GetString());
        }

        var cookies = new CookieContainer();
        using var handler = new HttpClientHandler { CookieContainer = cookies };
        using var browserLike = new HttpClient(handler);
        Assert.Equal(HttpStatusCode.OK, (await browserLike.GetAsync(new Uri(app.Link))).StatusCode);
        var first = await browserLike.GetStringAsync(new Uri(app.BaseUrl + "/Orders"));
        Assert.Equal(100, CountRows(first));
        Assert.Contains($"Record no. {Orders - 1}<", first, StringComparison.Ordinal);
        var older = System.Text.RegularExpressions.Regex.Match(first, "id=\"older-orders\" href=\"([^\"]+)\"");
        Assert.True(older.Success, "the first page links to older orders");
        var second = await browserLike.GetStringAsync(new Uri(app.BaseUrl + WebUtility.HtmlDecode(older.Groups[1].Value)));
        Assert.Equal(100, CountRows(second));
        Assert.Contains($"Record no. {Orders - 101}<", second, StringComparison.Ordinal);

        static int CountRows(string html) => System.Text.RegularExpressions.Regex.Count(html, "<tr data-order=");
    }

    /// <summary>
    /// Runs the axe-core accessibility engine (installed by scripts/install-deps.sh) on the page and
    /// fails on any WCAG 2 A or AA violation: missing labels and names, contrast, structure.
    /// </summary>
    private static async Task AccessibleAsync(IPage page, string what)
    {
        var axe = Path.Combine(BuildOutput.RepositoryRoot, ".tools", "axe", "axe.min.js");
        Assert.True(File.Exists(axe), $"{axe} is missing: run scripts/install-deps.sh");
        await page.AddScriptTagAsync(new PageAddScriptTagOptions { Path = axe });
        // The first entry counts the rules that passed (so a scan that checked nothing fails too).
        var found = await page.EvaluateAsync<string[]>(
            "async () => { const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });" +
            " return [String(r.passes.length)].concat(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))); }");
        Assert.True(int.Parse(found[0], System.Globalization.CultureInfo.InvariantCulture) >= 10, $"the accessibility scan of {what} checked only {found[0]} rules");
        Assert.True(found.Length == 1, $"accessibility violations on {what}: {string.Join("; ", found.Skip(1))}");
    }

    /// <summary>Moves the focus with Tab alone until <paramref name="selector"/> has it (at most 60 presses).</summary>
    private static async Task KeyboardToAsync(IPage page, string selector)
    {
        for (var presses = 0; presses < 60; presses++)
        {
            if (await page.EvaluateAsync<bool>("s => document.activeElement === document.querySelector(s)", selector))
            {
                return;
            }

            await page.Keyboard.PressAsync("Tab");
        }

        Assert.Fail($"{selector} cannot be reached with the Tab key (60 presses)");
    }

    /// <summary>Opens the (only) order on the Orders page.</summary>
    private static async Task OpenOrderAsync(IPage page, DesktopProcess app)
    {
        await page.GotoAsync($"{app.BaseUrl}/Orders");
        await page.ClickAsync("#orders a.open-order");
        await Assertions.Expect(page.Locator("#timeline")).ToBeVisibleAsync();
    }

    /// <summary>A 1200x800 JPEG: a table top and legs.</summary>
    private static byte[] TablePhoto()
    {
        using var bitmap = new SkiaSharp.SKBitmap(1200, 800);
        using (var canvas = new SkiaSharp.SKCanvas(bitmap))
        using (var wood = new SkiaSharp.SKPaint { Color = new SkiaSharp.SKColor(0x5C, 0x40, 0x33) })
        {
            canvas.Clear(SkiaSharp.SKColors.WhiteSmoke);
            canvas.DrawRect(200, 250, 800, 60, wood);
            canvas.DrawRect(260, 310, 40, 350, wood);
            canvas.DrawRect(900, 310, 40, 350, wood);
        }

        using var image = SkiaSharp.SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    private async Task<CliRunner> UserAsync(string home, string name)
    {
        var user = new CliRunner(_temp.Sub(home));
        var init = await user.RunAsync("init", "--name", name);
        Assert.True(init.ExitCode == 0, init.Stderr);
        return user;
    }

    private async Task<IPage> OpenAsync(DesktopProcess app)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 800 } });
        context.SetDefaultTimeout(Timeout);
        var page = await context.NewPageAsync();
        await page.GotoAsync(app.Link);
        await Expect(page.Locator("h1"), "Search");
        return page;
    }

    private static async Task Expect(ILocator locator, string text) =>
        await Assertions.Expect(locator.First).ToContainTextAsync(text, new LocatorAssertionsToContainTextOptions { Timeout = Timeout });

    private static async Task Shot(IPage page, string name) =>
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name + ".png"), FullPage = true });
}
