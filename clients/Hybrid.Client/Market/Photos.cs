using Google.Protobuf;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using SkiaSharp;

namespace Hybrid.Client.Market;

/// <summary>A photo refused: not an image, too large, or it would not decode; the message says which.</summary>
public sealed class PhotoRejectedException : Exception
{
    public PhotoRejectedException()
    {
    }

    public PhotoRejectedException(string message)
        : base(message)
    {
    }

    public PhotoRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A photo as the seller publishes it: the re-encoded full image and its thumbnail.</summary>
/// <param name="Image">JPEG bytes of the full image, longest side at most <see cref="Photos.MaxSide"/>.</param>
/// <param name="Thumbnail">JPEG bytes, at most <see cref="ListingRules.MaxThumbnailBytes"/>.</param>
/// <param name="Width">Of the full image, in pixels.</param>
/// <param name="Height">Of the full image, in pixels.</param>
public sealed record PreparedPhoto(byte[] Image, byte[] Thumbnail, int Width, int Height);

/// <summary>
/// Listing photos, decoded with limits and re-encoded with SkiaSharp. The seller's side re-encodes
/// every photo, which drops all metadata (a phone photo's EXIF carries where it was taken) after
/// turning the pixels the way the EXIF orientation says; whoever shows a photo from another peer
/// decodes it only through <see cref="Decode"/>, which refuses before decoding anything larger than
/// the limits (a crafted header cannot make it allocate gigabytes) and turns every decoder failure
/// into a <see cref="PhotoRejectedException"/>.
/// </summary>
public static class Photos
{
    /// <summary>Largest photo file accepted, in bytes.</summary>
    public const long MaxFileBytes = 25L * 1024 * 1024;

    /// <summary>Most pixels a photo may have to be decoded at all (50 megapixels).</summary>
    public const long MaxPixels = 50_000_000;

    /// <summary>Longest side of a published full image, in pixels (larger ones are scaled down).</summary>
    public const int MaxSide = 2048;

    /// <summary>Longest side of a thumbnail, in pixels.</summary>
    public const int ThumbnailSide = 320;

    /// <summary>Reads, checks and re-encodes a photo file for a listing.</summary>
    /// <exception cref="PhotoRejectedException">Not an image this side decodes, or over a limit.</exception>
    public static PreparedPhoto Prepare(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new PhotoRejectedException($"{path} does not exist");
        }

        if (info.Length > MaxFileBytes)
        {
            throw new PhotoRejectedException($"{path} is {info.Length / (1024 * 1024)} MB; a photo is at most {MaxFileBytes / (1024 * 1024)} MB");
        }

        using var decoded = Decode(File.ReadAllBytes(path), oriented: true);
        using var full = Fit(decoded, MaxSide);
        var image = Jpeg(full, 85);
        return new PreparedPhoto(image, Thumbnail(full), full.Width, full.Height);
    }

    /// <summary>
    /// Decodes image bytes from anywhere, within the limits: the header is read first and the image
    /// refused if it claims more than <see cref="MaxPixels"/>; with <paramref name="oriented"/>, the
    /// pixels are turned as the EXIF orientation says.
    /// </summary>
    /// <exception cref="PhotoRejectedException">Not an image, over the limits, or the decoder failed.</exception>
    public static SKBitmap Decode(byte[] bytes, bool oriented = false)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length == 0 || bytes.Length > MaxFileBytes)
        {
            throw new PhotoRejectedException($"an image is 1 byte to {MaxFileBytes / (1024 * 1024)} MB");
        }

        try
        {
            using var data = SKData.CreateCopy(bytes);
            using var codec = SKCodec.Create(data) ?? throw new PhotoRejectedException("not an image this side can read (JPEG, PNG, WebP, GIF, BMP)");
            var (width, height) = (codec.Info.Width, codec.Info.Height);
            if (width <= 0 || height <= 0 || (long)width * height > MaxPixels)
            {
                throw new PhotoRejectedException($"an image of {width}×{height} pixels is over the limit of {MaxPixels / 1_000_000} megapixels");
            }

            var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
            var result = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
            if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            {
                bitmap.Dispose();
                throw new PhotoRejectedException($"the image does not decode ({result})");
            }

            return oriented ? Orient(bitmap, codec.EncodedOrigin) : bitmap;
        }
        catch (Exception ex) when (ex is not PhotoRejectedException and not OutOfMemoryException)
        {
            throw new PhotoRejectedException($"the image does not decode: {ex.Message}", ex);
        }
    }

    /// <summary>Checks a thumbnail from a listing before it is shown: a JPEG within the listing's limits that decodes.</summary>
    public static bool IsShowableThumbnail(ByteString thumbnail)
    {
        ArgumentNullException.ThrowIfNull(thumbnail);
        if (thumbnail.Length > ListingRules.MaxThumbnailBytes || !ListingRules.IsJpeg(thumbnail.Span))
        {
            return false;
        }

        try
        {
            using var bitmap = Decode(thumbnail.ToByteArray());
            return bitmap.Width <= ThumbnailSide * 2 && bitmap.Height <= ThumbnailSide * 2;
        }
        catch (PhotoRejectedException)
        {
            return false;
        }
    }

    /// <summary>The listing's record of a prepared photo whose full image has <paramref name="contentId"/>.</summary>
    public static ListingPhoto ToListingPhoto(PreparedPhoto photo, string contentId)
    {
        ArgumentNullException.ThrowIfNull(photo);
        return new ListingPhoto { ContentId = contentId, Thumbnail = ByteString.CopyFrom(photo.Thumbnail), Width = (uint)photo.Width, Height = (uint)photo.Height };
    }

    private static byte[] Thumbnail(SKBitmap full)
    {
        using var small = Fit(full, ThumbnailSide);
        // Lower the quality until it fits (a noisy photo at 320 pixels can exceed the budget at 80).
        foreach (var quality in new[] { 80, 70, 60, 50, 40, 30 })
        {
            var bytes = Jpeg(small, quality);
            if (bytes.Length <= ListingRules.MaxThumbnailBytes)
            {
                return bytes;
            }
        }

        using var smaller = Fit(full, ThumbnailSide / 2);
        var last = Jpeg(smaller, 30);
        return last.Length <= ListingRules.MaxThumbnailBytes ? last : throw new PhotoRejectedException("the photo's thumbnail does not fit the listing's budget");
    }

    private static byte[] Jpeg(SKBitmap bitmap, int quality)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, quality) ?? throw new PhotoRejectedException("the photo could not be encoded as JPEG");
        return data.ToArray();
    }

    /// <summary>The bitmap scaled so its longest side is at most <paramref name="side"/> (a copy either way).</summary>
    private static SKBitmap Fit(SKBitmap source, int side)
    {
        var scale = Math.Min(1.0, (double)side / Math.Max(source.Width, source.Height));
        var info = new SKImageInfo(Math.Max(1, (int)Math.Round(source.Width * scale)), Math.Max(1, (int)Math.Round(source.Height * scale)), SKColorType.Rgba8888, SKAlphaType.Premul);
        return source.Resize(info, new SKSamplingOptions(SKCubicResampler.Mitchell)) ?? throw new PhotoRejectedException("the photo could not be scaled");
    }

    /// <summary>Turns the pixels the way the EXIF orientation says (the orientation itself is dropped with the metadata).</summary>
    private static SKBitmap Orient(SKBitmap bitmap, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft)
        {
            return bitmap;
        }

        var swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        var turned = new SKBitmap(swap ? bitmap.Height : bitmap.Width, swap ? bitmap.Width : bitmap.Height, bitmap.ColorType, bitmap.AlphaType);
        using (var canvas = new SKCanvas(turned))
        {
            var (w, h) = (bitmap.Width, bitmap.Height);
            switch (origin)
            {
                case SKEncodedOrigin.TopRight: canvas.Scale(-1, 1, w / 2f, 0); break;
                case SKEncodedOrigin.BottomRight: canvas.RotateDegrees(180, w / 2f, h / 2f); break;
                case SKEncodedOrigin.BottomLeft: canvas.Scale(1, -1, 0, h / 2f); break;
                // (x, y) -> (y, x): transpose.
                case SKEncodedOrigin.LeftTop: canvas.RotateDegrees(90); canvas.Scale(1, -1); break;
                // (x, y) -> (h - y, x): a quarter turn clockwise.
                case SKEncodedOrigin.RightTop: canvas.Translate(h, 0); canvas.RotateDegrees(90); break;
                // (x, y) -> (h - y, w - x): transverse.
                case SKEncodedOrigin.RightBottom: canvas.Translate(h, w); canvas.RotateDegrees(90); canvas.Scale(-1, 1); break;
                // (x, y) -> (y, w - x): a quarter turn counter-clockwise.
                case SKEncodedOrigin.LeftBottom: canvas.Translate(0, w); canvas.RotateDegrees(-90); break;
            }

            canvas.DrawBitmap(bitmap, 0, 0);
        }

        bitmap.Dispose();
        return turned;
    }
}
