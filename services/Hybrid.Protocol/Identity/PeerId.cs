using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Hybrid.Protocol.Identity;

/// <summary>
/// The identity of a peer: SHA-256 of its public key (SubjectPublicKeyInfo), shown as
/// base32 in dash-separated groups of seven, with a check character after every
/// thirteen characters so that a mistyped id is caught, not looked up.
/// </summary>
/// <example>MFRGGZD-FMZTGNB-...</example>
public readonly record struct PeerId
{
    /// <summary>Length of the hash the id is made of.</summary>
    public const int HashLength = 32;

    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    private const int ChunkLength = 13;
    private const int PlainLength = 52;   // 256 bits in base32, without padding
    private const int CheckedLength = 56; // plus one check character per chunk
    private const int GroupLength = 7;

    private readonly byte[]? _hash;

    private PeerId(byte[] hash) => _hash = hash;

    /// <summary>The 32-byte SHA-256 hash of the public key.</summary>
    public ReadOnlySpan<byte> Hash => _hash ?? throw new InvalidOperationException("An empty PeerId has no hash.");

    /// <summary>Whether this is the default (empty) value.</summary>
    public bool IsEmpty => _hash is null;

    /// <summary>Derives the id of the peer owning <paramref name="subjectPublicKeyInfo"/>.</summary>
    public static PeerId FromPublicKey(ReadOnlySpan<byte> subjectPublicKeyInfo) =>
        new(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>Whether <paramref name="subjectPublicKeyInfo"/> is the key this id was made from.</summary>
    public bool Matches(ReadOnlySpan<byte> subjectPublicKeyInfo) =>
        _hash is not null && CryptographicOperations.FixedTimeEquals(_hash, SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>Parses a PeerId, with or without dashes and check characters, in any letter case.</summary>
    /// <exception cref="FormatException">The text is not a PeerId; the message says what is wrong.</exception>
    public static PeerId Parse(string? text) =>
        TryParse(text, out var id, out var error) ? id : throw new FormatException(error);

    /// <summary>Parses a PeerId; on failure <paramref name="error"/> says what is wrong, in words a person can act on.</summary>
    public static bool TryParse(string? text, out PeerId id, [NotNullWhen(false)] out string? error)
    {
        id = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "peer id is empty";
            return false;
        }

        var chars = new StringBuilder(CheckedLength);
        foreach (var c in text.Trim())
        {
            if (c is '-' or ' ')
            {
                continue;
            }

            var upper = char.ToUpperInvariant(c);
            if (Alphabet.IndexOf(upper, StringComparison.Ordinal) < 0)
            {
                error = $"peer id contains '{c}', which is not a base32 character (A-Z, 2-7)";
                return false;
            }

            chars.Append(upper);
        }

        string plain;
        if (chars.Length == CheckedLength)
        {
            var plainBuilder = new StringBuilder(PlainLength);
            for (var chunk = 0; chunk < 4; chunk++)
            {
                var body = chars.ToString(chunk * (ChunkLength + 1), ChunkLength);
                var check = chars[(chunk * (ChunkLength + 1)) + ChunkLength];
                if (LuhnBase32(body) != check)
                {
                    error = $"peer id has a typo: check character {chunk + 1} of 4 does not match";
                    return false;
                }

                plainBuilder.Append(body);
            }

            plain = plainBuilder.ToString();
        }
        else if (chars.Length == PlainLength)
        {
            plain = chars.ToString();
        }
        else
        {
            error = $"peer id has {chars.Length} characters; expected {CheckedLength} (or {PlainLength} without check characters)";
            return false;
        }

        var hash = Base32Decode(plain);
        if (hash is null)
        {
            error = "peer id does not decode to a 256-bit hash";
            return false;
        }

        id = new PeerId(hash);
        error = null;
        return true;
    }

    /// <summary>The grouped form with check characters, e.g. <c>ABCDEFG-HIJKLMN-…</c> (8 groups of 7).</summary>
    public override string ToString()
    {
        if (_hash is null)
        {
            return string.Empty;
        }

        var plain = Base32Encode(_hash);
        var withChecks = new StringBuilder(CheckedLength);
        for (var chunk = 0; chunk < 4; chunk++)
        {
            var body = plain.Substring(chunk * ChunkLength, ChunkLength);
            withChecks.Append(body).Append(LuhnBase32(body));
        }

        var grouped = new StringBuilder(CheckedLength + 7);
        for (var i = 0; i < withChecks.Length; i++)
        {
            if (i > 0 && i % GroupLength == 0)
            {
                grouped.Append('-');
            }

            grouped.Append(withChecks[i]);
        }

        return grouped.ToString();
    }

    /// <inheritdoc />
    public bool Equals(PeerId other) =>
        _hash is null ? other._hash is null : other._hash is not null && _hash.AsSpan().SequenceEqual(other._hash);

    /// <inheritdoc />
    public override int GetHashCode() => _hash is null ? 0 : BitConverter.ToInt32(_hash, 0);

    private static char LuhnBase32(string chunk)
    {
        const int n = 32;
        var factor = 2;
        var sum = 0;
        for (var i = chunk.Length - 1; i >= 0; i--)
        {
            var addend = factor * Alphabet.IndexOf(chunk[i], StringComparison.Ordinal);
            factor = factor == 2 ? 1 : 2;
            sum += (addend / n) + (addend % n);
        }

        return Alphabet[(n - (sum % n)) % n];
    }

    private static string Base32Encode(ReadOnlySpan<byte> data)
    {
        var output = new StringBuilder((data.Length * 8 + 4) / 5);
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                output.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            output.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        }

        return output.ToString();
    }

    private static byte[]? Base32Decode(string text)
    {
        var output = new byte[HashLength];
        int buffer = 0, bits = 0, written = 0;
        foreach (var c in text)
        {
            buffer = (buffer << 5) | Alphabet.IndexOf(c, StringComparison.Ordinal);
            bits += 5;
            if (bits >= 8)
            {
                if (written == HashLength)
                {
                    return null;
                }

                output[written++] = (byte)(buffer >> (bits - 8));
                bits -= 8;
            }
        }

        // 52 characters carry 260 bits: the 4 left over must be zero, or two texts would name one id.
        return written == HashLength && (buffer & ((1 << bits) - 1)) == 0 ? output : null;
    }
}
