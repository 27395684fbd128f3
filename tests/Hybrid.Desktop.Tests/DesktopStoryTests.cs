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
