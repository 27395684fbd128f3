using System.Buffers.Binary;
using System.Text;
using Hybrid.Client.Market;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Hybrid.Testing;
using SkiaSharp;

namespace Hybrid.Client.Tests;

/// <summary>
/// Listing photos as a seller prepares them and a buyer's side decodes them: metadata (GPS) gone from
/// the bytes, orientation applied, thumbnails within the listing's budget, and crafted images refused
/// with a reason instead of crashing or allocating without bound.
/// </summary>
public sealed class PhotoTests : IDisposable
{
    private const string Secret = "GPS 52.520008N 13.404954E, the seller's kitchen";
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void APhonePhotoLosesItsExifAndIsTurnedTheWayItsOrientationSaid()
    {
        // A 400x200 photo whose EXIF says "turn a quarter clockwise to show" (orientation 6) and names a place.
        var path = _temp.Sub("phone.jpg");
        File.WriteAllBytes(path, WithExif(Jpeg(Noise(400, 200), 90), orientation: 6, description: Secret));
        Assert.True(Contains(File.ReadAllBytes(path), Encoding.ASCII.GetBytes(Secret)), "the test photo carries no EXIF to strip: the check below would prove nothing");

        var photo = Photos.Prepare(path);

        Assert.False(Contains(photo.Image, Encoding.ASCII.GetBytes(Secret)), "the place survived in the published image");
        Assert.False(Contains(photo.Image, "Exif\0\0"u8.ToArray()), "the published image still has an EXIF segment");
        Assert.False(Contains(photo.Thumbnail, "Exif\0\0"u8.ToArray()), "the thumbnail has an EXIF segment");
        Assert.Equal((200, 400), (photo.Width, photo.Height));
        using var decoded = Photos.Decode(photo.Image);
        Assert.Equal((200, 400), (decoded.Width, decoded.Height));
    }

    [Fact]
    public void ALargePhotoIsScaledAndItsThumbnailFitsTheListingsBudget()
    {
        var path = _temp.Sub("large.png");
        using (var noise = Noise(3000, 2000))
        using (var image = SKImage.FromBitmap(noise))
        using (var data = image.Encode(SKEncodedImageFormat.Png, 100))
        {
            File.WriteAllBytes(path, data.ToArray());
        }

        var photo = Photos.Prepare(path);

        Assert.Equal((Photos.MaxSide, 1365), (photo.Width, photo.Height));
        Assert.InRange(photo.Thumbnail.Length, 1, ListingRules.MaxThumbnailBytes);
        Assert.True(ListingRules.IsJpeg(photo.Thumbnail));
        using var thumbnail = Photos.Decode(photo.Thumbnail);
        Assert.Equal(Photos.ThumbnailSide, Math.Max(thumbnail.Width, thumbnail.Height));
        var listing = Valid();
        listing.Photos.Add(Photos.ToListingPhoto(photo, "sha256:" + new string('a', 64)));
        Assert.Null(ListingRules.Check(listing, DateTimeOffset.UtcNow.AddDays(1), DateTimeOffset.UtcNow));
    }

    [Fact]
    public void CraftedImagesAreRefusedWithAReasonAndNeverDecodedPastTheLimits()
    {
        Assert.Contains("not an image", Assert.Throws<PhotoRejectedException>(() => Photos.Decode(Encoding.ASCII.GetBytes("GIF? no, a shell script"))).Message, StringComparison.Ordinal);

        // A PNG whose header claims 100,000 x 100,000 pixels: refused from the header, nothing allocated.
        var bomb = PngHeader(100_000, 100_000);
        Assert.Contains("megapixels", Assert.Throws<PhotoRejectedException>(() => Photos.Decode(bomb)).Message, StringComparison.Ordinal);

        // Random bytes behind a JPEG start marker, and a JPEG cut in half: no crash either way.
        var random = new byte[4096];
        new Random(7).NextBytes(random);
        random[0] = 0xFF;
        random[1] = 0xD8;
        random[2] = 0xFF;
        Assert.Throws<PhotoRejectedException>(() => Photos.Decode(random));
        var whole = Jpeg(Noise(300, 300), 80);
        try
        {
            using var half = Photos.Decode(whole[..(whole.Length / 2)]);
            Assert.Equal(300, half.Width);
        }
        catch (PhotoRejectedException)
        {
            // Refused is as good as decoded partially; a crash is what must not happen.
        }

        // Thumbnails are shown only if they are JPEGs within the budget that decode within the limits.
        Assert.False(Photos.IsShowableThumbnail(Google.Protobuf.ByteString.CopyFrom(random)));
        Assert.False(Photos.IsShowableThumbnail(Google.Protobuf.ByteString.CopyFrom(bomb)));
        Assert.True(Photos.IsShowableThumbnail(Google.Protobuf.ByteString.CopyFrom(Jpeg(Noise(120, 90), 70))));
    }

    [Fact]
    public void AListingRefusesMorePhotosThanAllowedAndThumbnailsThatAreNotSmallJpegs()
    {
        var now = DateTimeOffset.UtcNow;
        var photo = new ListingPhoto { ContentId = "sha256:" + new string('b', 64), Thumbnail = Google.Protobuf.ByteString.CopyFrom(Jpeg(Noise(64, 64), 70)), Width = 64, Height = 64 };

        var many = Valid();
        many.Photos.AddRange(Enumerable.Repeat(photo, ListingRules.MaxPhotos + 1));
        Assert.Contains("at most 8", ListingRules.Check(many, now.AddDays(1), now), StringComparison.Ordinal);

        var png = Valid();
        png.Photos.Add(new ListingPhoto(photo) { Thumbnail = Google.Protobuf.ByteString.CopyFrom(PngHeader(10, 10)) });
        Assert.Contains("must be a JPEG", ListingRules.Check(png, now.AddDays(1), now), StringComparison.Ordinal);

        var big = Valid();
        var padded = new byte[ListingRules.MaxThumbnailBytes + 1];
        photo.Thumbnail.Span.CopyTo(padded);
        padded[^2] = 0xFF;
        padded[^1] = 0xD9;
        big.Photos.Add(new ListingPhoto(photo) { Thumbnail = Google.Protobuf.ByteString.CopyFrom(padded) });
        Assert.Contains("must be a JPEG", ListingRules.Check(big, now.AddDays(1), now), StringComparison.Ordinal);

        var huge = Valid();
        huge.Photos.Add(new ListingPhoto(photo) { Width = 100_000 });
        Assert.Contains("width and height", ListingRules.Check(huge, now.AddDays(1), now), StringComparison.Ordinal);
    }

    private static Listing Valid() => new()
    {
        ListingId = ListingRules.NewListingId(),
        Title = "Ceramic vase",
        Price = ListingRules.ParseMoney("18.00", "EUR"),
        Category = "home",
        Quantity = 1,
        CreatedMs = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(),
    };

    private static SKBitmap Noise(int width, int height)
    {
        var bitmap = new SKBitmap(width, height);
        var random = new Random(width * 31 + height);
        var pixels = new byte[width * height * 4];
        random.NextBytes(pixels);
        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        return bitmap;
    }

    private static byte[] Jpeg(SKBitmap bitmap, int quality)
    {
        using (bitmap)
        using (var image = SKImage.FromBitmap(bitmap))
        using (var data = image.Encode(SKEncodedImageFormat.Jpeg, quality))
        {
            return data.ToArray();
        }
    }

    /// <summary>Inserts an APP1 EXIF segment (orientation and an image description) right after the JPEG's start marker.</summary>
    private static byte[] WithExif(byte[] jpeg, ushort orientation, string description)
    {
        var text = Encoding.ASCII.GetBytes(description + "\0");
        var tiff = new byte[8 + 2 + (2 * 12) + 4 + text.Length];
        "II"u8.CopyTo(tiff);
        BinaryPrimitives.WriteUInt16LittleEndian(tiff.AsSpan(2), 42);
        BinaryPrimitives.WriteUInt32LittleEndian(tiff.AsSpan(4), 8);
        BinaryPrimitives.WriteUInt16LittleEndian(tiff.AsSpan(8), 2);
        // ImageDescription (0x010E), ASCII, its text after the IFD.
        Entry(tiff.AsSpan(10), 0x010E, 2, (uint)text.Length, (uint)(8 + 2 + 24 + 4));
        // Orientation (0x0112), SHORT, value inline.
        Entry(tiff.AsSpan(22), 0x0112, 3, 1, orientation);
        text.CopyTo(tiff, 8 + 2 + 24 + 4);
        var segment = new List<byte> { 0xFF, 0xE1 };
        var length = 2 + 6 + tiff.Length;
        segment.Add((byte)(length >> 8));
        segment.Add((byte)length);
        segment.AddRange("Exif\0\0"u8.ToArray());
        segment.AddRange(tiff);
        return [.. jpeg[..2], .. segment, .. jpeg[2..]];

        static void Entry(Span<byte> at, ushort tag, ushort type, uint count, uint value)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(at, tag);
            BinaryPrimitives.WriteUInt16LittleEndian(at[2..], type);
            BinaryPrimitives.WriteUInt32LittleEndian(at[4..], count);
            BinaryPrimitives.WriteUInt32LittleEndian(at[8..], value);
        }
    }

    /// <summary>A PNG of the given size with no pixel data: signature, IHDR, an empty IDAT.</summary>
    private static byte[] PngHeader(int width, int height)
    {
        var header = new byte[8 + 25 + 12];
        new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }.CopyTo(header, 0);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), 13);
        "IHDR"u8.CopyTo(header.AsSpan(12));
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(20), height);
        header[24] = 8;
        header[25] = 6;
        var crc = Crc32(header.AsSpan(12, 17));
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(29), crc);
        "IDAT"u8.CopyTo(header.AsSpan(37));
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(41), Crc32("IDAT"u8));
        return header;
    }

    /// <summary>The PNG chunk checksum (CRC-32, polynomial 0xEDB88320).</summary>
    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
