using Hybrid.Protocol.Listings;
using Hybrid.Testing;
using SkiaSharp;
using static Hybrid.Supernode.Tests.Infrastructure.Cli;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Listing photos end to end: published through the CLI on one supernode of a cluster, found with
/// their thumbnails by a search through the other, and the full image fetched from the seller's
/// daemon: the same bytes the seller published, with no EXIF left in them.
/// </summary>
public sealed class ListingPhotoTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ThumbnailsShowInASearchThroughAnotherSupernodeAndTheFullImageComesFromTheSeller()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var (sn1, sn2) = (cluster.Nodes[0], cluster.Nodes[1]);
        var (seller, buyer) = (await InitAsync("seller", "Sam"), await InitAsync("buyer", "Bea"));
        await using var sellerDaemon = await DaemonProcess.StartAsync(seller, "--supernode", sn1.GrpcUrl, "--listen", "127.0.0.1:0");
        await using var buyerDaemon = await DaemonProcess.StartAsync(buyer, "--supernode", sn2.GrpcUrl, "--listen", "127.0.0.1:0");
        var sellerId = (await Ok(seller.RunAsync("id"))).Stdout.Trim();

        var front = Photo("front.jpg", 1200, 800);
        var back = Photo("back.png", 600, 900);
        var published = Json(await Ok(seller.RunAsync("listing", "publish", "--title", "Teak sideboard, 1960s", "--price", "340.00", "--currency", "EUR", "--category", "home", "--photo", front, "--photo", back, "--json", "--supernode", sn1.GrpcUrl)));
        var photoIds = published.GetProperty("photos").EnumerateArray().Select(p => p.GetString()!).ToList();
        Assert.Equal(2, photoIds.Count);

        // Through the other supernode: the listing with both thumbnails, the cover first.
        var hit = await Eventually.ReturnsAsync(
            async () => Json(await Ok(buyer.RunAsync("search", "teak sideboard", "--json", "--supernode", sn2.GrpcUrl))).GetProperty("listings").EnumerateArray().ToList(),
            hits => hits.Count == 1,
            TimeSpan.FromSeconds(30),
            "the listing to be found through the second supernode");
        var photos = hit[0].GetProperty("photos").EnumerateArray().ToList();
        Assert.Equal(photoIds, photos.Select(p => p.GetProperty("contentId").GetString()!).ToList());
        Assert.Equal((1200, 800), (photos[0].GetProperty("width").GetInt32(), photos[0].GetProperty("height").GetInt32()));
        var thumbnail = Convert.FromBase64String(photos[0].GetProperty("thumbnail").GetString()!);
        Assert.InRange(thumbnail.Length, 1, ListingRules.MaxThumbnailBytes);
        using (var decoded = SKBitmap.Decode(thumbnail))
        {
            Assert.Equal((320, 213), (decoded.Width, decoded.Height));
        }

        // The full image, from the seller peer: what the seller published, metadata-free.
        var got = _temp.Sub("got-front.jpg");
        await Ok(buyer.RunAsync("fetch", photoIds[0], "--from", sellerId, "--out", got));
        var bytes = await File.ReadAllBytesAsync(got);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(seller.Home, "photos", Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)) + ".jpg")), bytes);
        Assert.True(bytes.AsSpan().IndexOf("Exif\0\0"u8) < 0, "the published photo kept an EXIF segment");
        using var full = SKBitmap.Decode(bytes);
        Assert.Equal((1200, 800), (full.Width, full.Height));

        // A file that is not an image is refused before anything is published.
        var notAPhoto = _temp.Sub("notes.jpg");
        await File.WriteAllTextAsync(notAPhoto, "this is not a photo");
        var refused = await seller.RunAsync("listing", "publish", "--title", "Broken photo", "--price", "1", "--currency", "EUR", "--photo", notAPhoto, "--supernode", sn1.GrpcUrl);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("photo notes.jpg: not an image", refused.Stderr, StringComparison.Ordinal);
    }

    private string Photo(string name, int width, int height)
    {
        var path = _temp.Sub(name);
        using var bitmap = new SKBitmap(width, height);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.SaddleBrown);
            using var paint = new SKPaint { Color = SKColors.Goldenrod };
            canvas.DrawCircle(width / 2f, height / 2f, Math.Min(width, height) / 3f, paint);
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(name.EndsWith(".png", StringComparison.Ordinal) ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    private Task<CliRunner> InitAsync(string home, string name) => Infrastructure.Cli.InitAsync(_temp, home, name);
}
