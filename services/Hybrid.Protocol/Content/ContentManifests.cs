using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Google.Protobuf;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Content;

/// <summary>
/// Content addressing for goods data: a file is cut into fixed-size chunks; the manifest lists the
/// SHA-256 of each; the content id is the SHA-256 of the manifest's canonical bytes. A downloader
/// checks the manifest against the id it asked for, then every chunk against the manifest.
/// </summary>
public static class ContentManifests
{
    /// <summary>Chunk size used when publishing: large enough for throughput, small enough to stay off the large object heap's worst cases.</summary>
    public const int DefaultChunkSize = 256 * 1024;

    /// <summary>Smallest chunk size accepted from another peer.</summary>
    public const int MinChunkSize = 16 * 1024;

    /// <summary>Largest chunk size accepted from another peer.</summary>
    public const int MaxChunkSize = 1024 * 1024;

    /// <summary>The prefix of every content id.</summary>
    public const string Prefix = "sha256:";

    private static readonly byte[] Domain = "hybrid.manifest.v1\n"u8.ToArray();
    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>Reads <paramref name="stream"/> to its end and builds its manifest.</summary>
    public static async Task<ContentManifest> BuildAsync(Stream stream, int chunkSize = DefaultChunkSize, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var manifest = new ContentManifest { ChunkSize = (uint)chunkSize };
        var buffer = new byte[chunkSize];
        ulong size = 0;
        while (true)
        {
            var filled = await stream.ReadAtLeastAsync(buffer, chunkSize, throwOnEndOfStream: false, cancellationToken);
            if (filled == 0)
            {
                break;
            }

            size += (ulong)filled;
            manifest.ChunkHashes.Add(ByteString.CopyFrom(SHA256.HashData(buffer.AsSpan(0, filled))));
            if (filled < chunkSize)
            {
                break;
            }
        }

        manifest.Size = size;
        return manifest;
    }

    /// <summary>The content id of <paramref name="manifest"/>.</summary>
    public static string ContentId(ContentManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(header, manifest.Size);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], manifest.ChunkSize);
        hash.AppendData(Domain);
        hash.AppendData(header);
        foreach (var chunk in manifest.ChunkHashes)
        {
            hash.AppendData(chunk.Span);
        }

        return Prefix + Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Whether <paramref name="text"/> has the shape of a content id.</summary>
    public static bool IsContentId([NotNullWhen(true)] string? text) =>
        text is { Length: 71 } && text.StartsWith(Prefix, StringComparison.Ordinal) && text.AsSpan(Prefix.Length).ContainsAnyExcept(LowerHex) is false;

    /// <summary>
    /// Checks a manifest received from another peer against the content id asked for.
    /// Returns null when it is good, else why not.
    /// </summary>
    public static string? Check(ContentManifest manifest, string contentId)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (manifest.ChunkSize is < MinChunkSize or > MaxChunkSize)
        {
            return $"manifest chunk size {manifest.ChunkSize} is outside {MinChunkSize}-{MaxChunkSize}";
        }

        var expectedChunks = (manifest.Size + manifest.ChunkSize - 1) / manifest.ChunkSize;
        if ((ulong)manifest.ChunkHashes.Count != expectedChunks || manifest.ChunkHashes.Any(h => h.Length != 32))
        {
            return $"manifest lists {manifest.ChunkHashes.Count} chunk hashes for {manifest.Size} bytes in chunks of {manifest.ChunkSize}";
        }

        return string.Equals(ContentId(manifest), contentId, StringComparison.Ordinal)
            ? null
            : $"manifest does not hash to {contentId}: the peer serves other content";
    }

    /// <summary>Length of chunk <paramref name="index"/>.</summary>
    public static int ChunkLength(ContentManifest manifest, int index)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var start = (ulong)index * manifest.ChunkSize;
        return (int)Math.Min(manifest.ChunkSize, manifest.Size - start);
    }
}
