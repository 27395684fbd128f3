using System.Text.Json;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.Orders;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using static Hybrid.Supernode.Tests.Infrastructure.Cli;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// The order lifecycle through the CLI between real daemons: decline, cancel before and after
/// payment, fulfil and complete unsatisfied, and a dispute decided by the listing's mediator; each
/// side sees every signed step, a step out of place is refused with its reason, and the finished
/// chains verify from their bytes and back reviews.
/// </summary>
public sealed class OrderLifecycleCliTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task DeclineCancelAndFulfilEachReachTheOtherSideAndAStepOutOfPlaceIsRefusedWithItsReason()
    {
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Oak bookshelf, 180 cm", "--price", "60.00", "--currency", "EUR", "--quantity", "5", "--json"))).GetProperty("listingId").GetString()!;

        // Declined, with a reason the buyer sees; then nothing follows.
        var declined = await OrderAsync(buyer, listingId);
        Assert.Equal("declined", Json(await Ok(seller.RunAsync("order", "decline", declined, "--reason", "promised to a neighbour", "--json"))).GetProperty("state").GetString());
        var seen = await ShowAsync(buyer, declined);
        Assert.Equal("declined", seen.GetProperty("state").GetString());
        Assert.Equal(("declined", "seller", "promised to a neighbour"), Last(seen));
        var late = await buyer.RunAsync("order", "pay", declined);
        Assert.Equal(5, late.ExitCode);
        Assert.Contains("declined; nothing follows", late.Stderr, StringComparison.Ordinal);

        // Accepted, then cancelled by the seller before any payment.
        var unpaid = await OrderAsync(buyer, listingId);
        await Ok(seller.RunAsync("order", "accept", unpaid));
        await Ok(seller.RunAsync("order", "cancel", unpaid, "--reason", "the shelf was damaged in my cellar"));
        Assert.Equal(("cancelled", "seller", "the shelf was damaged in my cellar"), Last(await ShowAsync(buyer, unpaid)));

        // Accepted with payment instructions, paid, then cancelled by the buyer.
        var cancelled = await OrderAsync(buyer, listingId);
        await Ok(seller.RunAsync("order", "accept", cancelled, "--payment", "IBAN DE02 1203 0000 0000 2020 51, reference: shelf"));
        Assert.Equal("IBAN DE02 1203 0000 0000 2020 51, reference: shelf", (await ShowAsync(buyer, cancelled)).GetProperty("paymentInstructions").GetString());
        await Ok(buyer.RunAsync("order", "pay", cancelled, "--note", "transfer 7781"));
        Assert.Equal("paid", (await ShowAsync(seller, cancelled)).GetProperty("state").GetString());
        await Ok(buyer.RunAsync("order", "cancel", cancelled, "--reason", "found one nearer"));
        var sellerSees = await ShowAsync(seller, cancelled);
        Assert.Equal("cancelled", sellerSees.GetProperty("state").GetString());
        Assert.Equal(["offered", "accepted", "paid", "cancelled"], sellerSees.GetProperty("timeline").EnumerateArray().Select(s => s.GetProperty("step").GetString()).ToList());
        var noPay = await seller.RunAsync("order", "pay", cancelled);
        Assert.Equal(5, noPay.ExitCode);
        Assert.Contains("only the buyer", noPay.Stderr, StringComparison.Ordinal);

        // Shipped with a tracking reference: no longer cancellable; completed unsatisfied; reviewable.
        var shipped = await OrderAsync(buyer, listingId);
        await Ok(seller.RunAsync("order", "accept", shipped, "--auto-complete-days", "10"));
        await Ok(seller.RunAsync("order", "fulfil", shipped, "--carrier", "DHL", "--tracking", "JJD000390007"));
        var buyerSees = await ShowAsync(buyer, shipped);
        Assert.Equal(("fulfilled", "completes itself"), (buyerSees.GetProperty("state").GetString(), buyerSees.GetProperty("deadline").GetString()));
        Assert.Equal(("fulfilled", "seller", "DHL, JJD000390007"), Last(buyerSees));
        var tooLate = await seller.RunAsync("order", "cancel", shipped, "--reason", "changed my mind");
        Assert.Equal(5, tooLate.ExitCode);
        Assert.Contains("only before it is fulfilled", tooLate.Stderr, StringComparison.Ordinal);
        var completed = Json(await Ok(buyer.RunAsync("order", "complete", shipped, "--unsatisfied", "--json")));
        var receipt = Receipts.Verify(Receipt.Parser.ParseFrom(Convert.FromBase64String(completed.GetProperty("receipt").GetString()!)), DateTimeOffset.UtcNow);
        Assert.Equal((OrderState.Completed, false), (receipt.State, receipt.Satisfied));
        Assert.Equal("completed", (await ShowAsync(seller, shipped)).GetProperty("state").GetString());
        await Ok(buyer.RunAsync("review", shipped, "--stars", "2", "--text", "one shelf was cracked"));
        var noVerdict = await buyer.RunAsync("review", shipped, "--stars", "2", "--verdict", "accept");
        Assert.Equal(5, noVerdict.ExitCode);
        Assert.Contains("no verdict to accept", noVerdict.Stderr, StringComparison.Ordinal);
        var cannotReview = await buyer.RunAsync("review", cancelled, "--stars", "1");
        Assert.Equal(5, cannotReview.ExitCode);
        Assert.Contains("this one was cancelled", cannotReview.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADisputeGoesToTheMediatorTheListingNamesWhoseVerdictEndsTheOrderForBothSides()
    {
        var (seller, buyer, mediator) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"), await InitAsync("mediator", "Mia"));
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var mediatorDaemon = await DaemonProcess.StartAsync(mediator, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var mediatorId = (await Ok(mediator.RunAsync("id"))).Stdout.Trim();
        var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Espresso machine, lever", "--price", "240.00", "--currency", "EUR", "--mediator", mediatorId, "--quantity", "3", "--json"))).GetProperty("listingId").GetString()!;

        var orderId = await OrderAsync(buyer, listingId);
        Assert.Equal(mediatorId, (await ShowAsync(buyer, orderId)).GetProperty("mediator").GetString());
        await Ok(seller.RunAsync("order", "accept", orderId, "--payment", "cash on pick-up"));
        await Ok(seller.RunAsync("order", "fulfil", orderId, "--carrier", "GLS", "--tracking", "ZX81"));
        await Ok(buyer.RunAsync("order", "dispute", orderId, "--reason", "arrived with a cracked boiler"));
        Assert.Equal("disputed", (await ShowAsync(seller, orderId)).GetProperty("state").GetString());

        // The buyer's evidence, with a photo, reaches the mediator, who fetches the photo from the buyer.
        var photo = _temp.Sub("boiler.jpg");
        await File.WriteAllBytesAsync(photo, BoilerPhoto());
        var sent = Json(await Ok(buyer.RunAsync("order", "evidence", orderId, "--text", "the crack runs along the boiler's seam", "--photo", photo, "--json")));
        var photoId = Assert.Single(sent.GetProperty("photos").EnumerateArray()).GetString()!;
        var message = Assert.Single(Json(await Ok(mediator.RunAsync("chat", "read", "--json"))).EnumerateArray(), m => m.GetProperty("text").GetString()!.StartsWith("Evidence for order " + orderId, StringComparison.Ordinal));
        Assert.Contains(photoId, message.GetProperty("text").GetString(), StringComparison.Ordinal);
        var buyerId = (await Ok(buyer.RunAsync("id"))).Stdout.Trim();
        await Ok(mediator.RunAsync("fetch", photoId, "--from", buyerId, "--out", _temp.Sub("evidence.jpg")));
        Assert.True(ListingRules.IsJpeg(await File.ReadAllBytesAsync(_temp.Sub("evidence.jpg"))), "the evidence photo did not arrive as the JPEG the buyer published");

        // The mediator holds the case: the order so far, ending in the dispute.
        var filed = await Eventually.ReturnsAsync(
            async () => Json(await Ok(mediator.RunAsync("order", "list", "--json"))).EnumerateArray().ToList(),
            cases => cases.Count == 1,
            TimeSpan.FromSeconds(30),
            "the mediator's daemon to file the dispute case");
        Assert.Equal(("mediator", "disputed"), (filed[0].GetProperty("role").GetString(), filed[0].GetProperty("state").GetString()));
        var notMine = await buyer.RunAsync("order", "decide", orderId, "--for", "buyer");
        Assert.Equal(5, notMine.ExitCode);
        Assert.Contains("only the mediator", notMine.Stderr, StringComparison.Ordinal);
        var badShare = await mediator.RunAsync("order", "decide", orderId, "--for", "split", "--buyer-share", "0");
        Assert.Equal(5, badShare.ExitCode);
        Assert.Contains("1 to 99 percent", badShare.Stderr, StringComparison.Ordinal);

        await Ok(mediator.RunAsync("order", "decide", orderId, "--for", "split", "--buyer-share", "40", "--note", "the boiler crack is visible in the delivery photos"));
        foreach (var party in new[] { buyer, seller })
        {
            var view = await ShowAsync(party, orderId);
            Assert.Equal("decided", view.GetProperty("state").GetString());
            Assert.Equal(("decided", "mediator", "split, 40% to the buyer: the boiler crack is visible in the delivery photos"), Last(view));
            var verdict = Receipts.Verify(Receipt.Parser.ParseFrom(Convert.FromBase64String(view.GetProperty("receipt").GetString()!)), DateTimeOffset.UtcNow);
            Assert.Equal((OrderState.Decided, 40u), (verdict.State, verdict.Verdict!.BuyerSharePercent));
        }

        // Verdicts for either side end their orders the same way, each in both parties' chains.
        foreach (var side in new[] { "buyer", "seller" })
        {
            var other = await OrderAsync(buyer, listingId);
            await Ok(seller.RunAsync("order", "accept", other));
            await Ok(seller.RunAsync("order", "dispute", other, "--reason", "the buyer has not paid in three weeks"));
            await Eventually.TrueAsync(
                async () => (await mediator.RunAsync("order", "show", other)).ExitCode == 0, TimeSpan.FromSeconds(30), "the mediator to file the next case");
            await Ok(mediator.RunAsync("order", "decide", other, "--for", side));
            Assert.Equal(("decided", "mediator", $"for the {side}"), Last(await ShowAsync(buyer, other)));
            Assert.Equal("decided", (await ShowAsync(seller, other)).GetProperty("state").GetString());
        }

        // The decided receipt backs reviews through the supernode; both sides accept the verdict,
        // which the mediator's record counts, and the reviews say how the order ended.
        await Ok(seller.RunAsync("review", orderId, "--stars", "3", "--text", "fair outcome", "--verdict", "accept"));
        await Ok(buyer.RunAsync("review", orderId, "--stars", "4", "--text", "good machine, bad packing", "--verdict", "accept"));
        var record = Json(await Ok(buyer.RunAsync("reputation", mediatorId, "--json"))).GetProperty("mediator");
        Assert.Equal((1, 1, 0, 1), (record.GetProperty("verdicts").GetInt32(), record.GetProperty("acceptedByBoth").GetInt32(), record.GetProperty("rejected").GetInt32(), record.GetProperty("splits").GetInt32()));
        var sellerId = (await Ok(seller.RunAsync("id"))).Stdout.Trim();
        var shown = Assert.Single(Json(await Ok(buyer.RunAsync("reputation", sellerId, "--json"))).GetProperty("reviews").EnumerateArray());
        Assert.Equal("decided by the mediator: split, 40% to the buyer", shown.GetProperty("orderOutcome").GetString());
    }

    [Fact]
    public async Task ConcurrentAcceptancesNeverSellMoreThanTheStockAndASoldOutListingSaysSo()
    {
        var seller = await InitAsync("seller", "Sam");
        var buyers = new[] { await InitAsync("b1", "Ann"), await InitAsync("b2", "Ben"), await InitAsync("b3", "Cat") };
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        var daemons = new List<DaemonProcess>();
        try
        {
            foreach (var buyer in buyers)
            {
                daemons.Add(await DaemonProcess.StartAsync(buyer, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0"));
            }

            var title = "Handmade ceramic mug " + Guid.NewGuid().ToString("N")[..8];
            var listingId = Json(await Ok(seller.RunAsync("listing", "publish", "--title", title, "--price", "14.00", "--currency", "EUR", "--quantity", "2", "--json"))).GetProperty("listingId").GetString()!;

            // Three buyers offer at once (each offer fits the stock of 2); the seller accepts all three at once.
            var orders = await Task.WhenAll(buyers.Select(b => OrderAsync(b, listingId)));
            var accepts = await Task.WhenAll(orders.Select(o => seller.RunAsync("order", "accept", o)));

            Assert.Equal(2, accepts.Count(a => a.ExitCode == 0));
            var refused = Assert.Single(accepts, a => a.ExitCode != 0);
            Assert.Equal(5, refused.ExitCode);
            Assert.Contains("sold out", refused.Stderr, StringComparison.Ordinal);
            var shown = Assert.Single(Json(await Ok(buyers[0].RunAsync("search", title, "--json"))).GetProperty("listings").EnumerateArray());
            Assert.Equal((0, true), (shown.GetProperty("quantity").GetInt32(), shown.GetProperty("soldOut").GetBoolean()));
            var late = await buyers[0].RunAsync("order", "create", listingId);
            Assert.Equal(5, late.ExitCode);
            Assert.Contains("sold out", late.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var daemon in daemons)
            {
                await daemon.DisposeAsync();
            }
        }
    }

    private Task<CliRunner> InitAsync(string home, string name) => Infrastructure.Cli.InitAsync(_temp, home, name);

    private static byte[] BoilerPhoto()
    {
        using var bitmap = new SkiaSharp.SKBitmap(640, 480);
        using (var canvas = new SkiaSharp.SKCanvas(bitmap))
        using (var paint = new SkiaSharp.SKPaint { Color = SkiaSharp.SKColors.DarkSlateGray, StrokeWidth = 6 })
        {
            canvas.Clear(SkiaSharp.SKColors.Silver);
            canvas.DrawLine(100, 100, 540, 380, paint);
        }

        using var image = SkiaSharp.SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 85);
        return data.ToArray();
    }

    private static async Task<string> OrderAsync(CliRunner buyer, string listingId) =>
        Json(await Ok(buyer.RunAsync("order", "create", listingId, "--json"))).GetProperty("orderId").GetString()!;

    private static async Task<JsonElement> ShowAsync(CliRunner user, string orderId) => Json(await Ok(user.RunAsync("order", "show", orderId, "--json")));

    private static (string? Step, string? By, string? Detail) Last(JsonElement view)
    {
        var last = view.GetProperty("timeline").EnumerateArray().Last();
        return (last.GetProperty("step").GetString(), last.GetProperty("by").GetString(), last.GetProperty("detail").GetString());
    }
}
