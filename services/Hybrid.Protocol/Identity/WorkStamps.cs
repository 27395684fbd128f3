using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Hybrid.Protocol.Identity;

/// <summary>
/// Proof of work that makes a new identity cost something (as Nostr's NIP-13 prices writes to
/// strangers' servers): a nonce such that SHA-256("hybrid.work.v1\n" || public key || nonce) starts
/// with at least the asked number of zero bits. It is bound to the key, so it is made once per
/// identity and cannot be reused for another.
/// </summary>
public static class WorkStamps
{
    /// <summary>The most a client mints for: 2^26 hashes, some seconds of one core. A network asking more is refused.</summary>
    public const int MaxBits = 26;

    /// <summary>Metadata carrying a new signer's stamp (hex) on writes made without a session.</summary>
    public const string WorkHeader = "hybrid-work";

    /// <summary>Trailer on a refusal for want of work: the bits the network asks, so a client can mint and retry.</summary>
    public const string WorkBitsTrailer = "hybrid-work-bits";

    /// <summary>Length of a stamp (the nonce), in bytes.</summary>
    public const int StampBytes = 8;

    private static readonly byte[] Domain = "hybrid.work.v1\n"u8.ToArray();

    /// <summary>Finds a stamp of at least <paramref name="bits"/> zero bits for <paramref name="publicKey"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bits"/> is above <see cref="MaxBits"/>.</exception>
    public static byte[] Mint(ReadOnlySpan<byte> publicKey, int bits, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bits);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, MaxBits);
        var input = Input(publicKey);
        Span<byte> hash = stackalloc byte[32];
        var nonce = input.AsSpan(input.Length - StampBytes);
        for (ulong counter = (ulong)RandomNumberGenerator.GetInt32(int.MaxValue) << 32; ; counter++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(nonce, counter);
            SHA256.HashData(input, hash);
            if (LeadingZeroBits(hash) >= bits)
            {
                return nonce.ToArray();
            }

            if ((counter & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    /// <summary>How many leading zero bits <paramref name="stamp"/> earns for <paramref name="publicKey"/> (0 for a malformed stamp).</summary>
    public static int Bits(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> stamp)
    {
        if (stamp.Length != StampBytes)
        {
            return 0;
        }

        var input = Input(publicKey);
        stamp.CopyTo(input.AsSpan(input.Length - StampBytes));
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(input, hash);
        return LeadingZeroBits(hash);
    }

    private static byte[] Input(ReadOnlySpan<byte> publicKey)
    {
        var input = new byte[Domain.Length + publicKey.Length + StampBytes];
        Domain.CopyTo(input, 0);
        publicKey.CopyTo(input.AsSpan(Domain.Length));
        return input;
    }

    private static int LeadingZeroBits(ReadOnlySpan<byte> hash)
    {
        var bits = 0;
        foreach (var b in hash)
        {
            if (b == 0)
            {
                bits += 8;
                continue;
            }

            return bits + System.Numerics.BitOperations.LeadingZeroCount((uint)b) - 24;
        }

        return bits;
    }
}
