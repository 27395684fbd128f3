using System.Text.Json;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

public sealed class CliTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private CliRunner User(string name) => new(_temp.Sub(name));

    [Fact]
    public async Task ASellerPublishesAndABuyerWithoutADaemonFindsIt()
    {
        var seller = User("seller");
        var buyer = User("buyer");
        var init = await seller.RunAsync("init", "--name", "Sam", "--json");
        Assert.Equal(0, init.ExitCode);
        var peerId = JsonDocument.Parse(init.Stdout).RootElement.GetProperty("peerId").GetString();
        Assert.Equal(peerId, (await seller.RunAsync("id")).Stdout.Trim());

        var published = await seller.RunAsync("listing", "publish", "--title", "Handmade walnut cutting board", "--price", "45", "--currency", "EUR",
            "--category", "home", "--location", "DE/Berlin", "--supernode", fixture.Node.GrpcUrl, "--json");
        Assert.True(published.ExitCode == 0, published.Stderr);
        var listingId = JsonDocument.Parse(published.Stdout).RootElement.GetProperty("listingId").GetString();

        var found = await buyer.RunAsync("search", "walnut board", "--max-price", "50", "--currency", "EUR", "--supernode", fixture.Node.GrpcUrl, "--json");
        Assert.True(found.ExitCode == 0, found.Stderr);
        var hit = Assert.Single(JsonDocument.Parse(found.Stdout).RootElement.GetProperty("listings").EnumerateArray());
        Assert.Equal(listingId, hit.GetProperty("listingId").GetString());
        Assert.Equal("45.00 EUR", hit.GetProperty("price").GetString());
        Assert.Equal(peerId, hit.GetProperty("seller").GetString());

        var mine = await seller.RunAsync("listing", "mine", "--supernode", fixture.Node.GrpcUrl, "--json");
        Assert.Contains(listingId!, mine.Stdout, StringComparison.Ordinal);
        var withdrawn = await seller.RunAsync("listing", "withdraw", listingId!, "--supernode", fixture.Node.GrpcUrl);
        Assert.Equal(0, withdrawn.ExitCode);
        var gone = await buyer.RunAsync("search", "walnut board", "--supernode", fixture.Node.GrpcUrl, "--json");
        Assert.Empty(JsonDocument.Parse(gone.Stdout).RootElement.GetProperty("listings").EnumerateArray());
    }

    [Fact]
    public async Task PeerRunKeepsASessionAndSavesTheSupernodeForLaterCommands()
    {
        var user = User("runner");
        Assert.Equal(0, (await user.RunAsync("init", "--name", "Robin")).ExitCode);
        var peerId = (await user.RunAsync("id")).Stdout.Trim();
        using var daemon = user.Launch("peer", "run", "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        try
        {
            // Later commands find the saved supernode without --supernode.
            var online = await Eventually.ReturnsAsync(
                () => user.RunAsync("peer", "lookup", peerId, "--json"),
                r => r.ExitCode == 0 && JsonDocument.Parse(r.Stdout).RootElement.GetProperty("online").GetBoolean(),
                TimeSpan.FromSeconds(30),
                "the running peer to show online");
            Assert.Equal("Robin", JsonDocument.Parse(online.Stdout).RootElement.GetProperty("name").GetString());
        }
        finally
        {
            daemon.Kill(entireProcessTree: true);
            await daemon.WaitForExitAsync();
        }
    }

    [Theory]
    [InlineData(2, "is not an amount", "listing", "publish", "--title", "Lamp", "--price", "cheap", "--currency", "EUR")]
    [InlineData(2, "ISO 4217", "listing", "publish", "--title", "Lamp", "--price", "5", "--currency", "EUX")]
    [InlineData(2, "typo", "peer", "lookup", "AABAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA")]
    [InlineData(2, "required", "listing", "publish", "--price", "5", "--currency", "EUR")]
    public async Task BadInputExitsWithUsageAndOneLine(int exitCode, string reason, params string[] args)
    {
        var user = User("bad");
        await user.RunAsync("init");

        var result = await user.RunAsync([.. args, "--supernode", fixture.Node.GrpcUrl]);

        Assert.Equal(exitCode, result.ExitCode);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(reason, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NotFoundUnreachableAndRefusedHaveTheirOwnExitCodes()
    {
        var user = User("codes");
        await user.RunAsync("init");
        var stranger = User("stranger");
        await stranger.RunAsync("init");
        var strangerId = (await stranger.RunAsync("id")).Stdout.Trim();

        var notFound = await user.RunAsync("peer", "lookup", strangerId, "--supernode", fixture.Node.GrpcUrl);
        var unreachable = await user.RunAsync("search", "anything", "--supernode", $"http://127.0.0.1:{Ports.Free()}");
        var refused = await user.RunAsync("listing", "withdraw", Protocol.Listings.ListingRules.NewListingId(), "--supernode", fixture.Node.GrpcUrl);

        Assert.Equal(3, notFound.ExitCode);
        Assert.Equal(4, unreachable.ExitCode);
        Assert.Contains("no supernode could be reached", unreachable.Stderr, StringComparison.Ordinal);
        Assert.Equal(3, refused.ExitCode);
        var sold = await user.RunAsync("listing", "publish", "--title", "Bike", "--price", "5", "--currency", "EUR", "--supernode", fixture.Node.GrpcUrl, "--json");
        var id = JsonDocument.Parse(sold.Stdout).RootElement.GetProperty("listingId").GetString()!;
        var foreign = await stranger.RunAsync("listing", "withdraw", id, "--supernode", fixture.Node.GrpcUrl);
        Assert.Equal(5, foreign.ExitCode);
        Assert.Contains("only the seller", foreign.Stderr, StringComparison.Ordinal);
    }
}
