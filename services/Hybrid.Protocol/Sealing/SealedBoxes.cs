using System.Security.Cryptography;
using Google.Protobuf;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Sealing;

/// <summary>
/// Seals bytes to one peer's public key so that only that peer can open them: ECDH P-256 between a
/// fresh ephemeral key and the recipient's key, HKDF-SHA256 over the shared secret (salted with both
/// public keys), AES-256-GCM with the recipient's key as associated data. Mailboxes hold these.
/// </summary>
public static class SealedBoxes
{
    /// <summary>
    /// The largest plaintext sealed (a chat message or an order step, with its signature): sealed, it
    /// stays within a supernode's default per-item cap of 32 KiB.
    /// </summary>
    public const int MaxPlaintextBytes = 31 * 1024;

    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private static readonly byte[] Info = "hybrid.mailbox.v1"u8.ToArray();

    /// <summary>Seals <paramref name="plaintext"/> to the holder of <paramref name="recipientPublicKey"/>.</summary>
    public static SealedItem Seal(ReadOnlySpan<byte> plaintext, byte[] recipientPublicKey)
    {
        ArgumentNullException.ThrowIfNull(recipientPublicKey);
        if (plaintext.Length > MaxPlaintextBytes)
        {
            throw new ArgumentException($"{plaintext.Length} bytes is too large to seal; at most {MaxPlaintextBytes}", nameof(plaintext));
        }

        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        using var recipient = ECDiffieHellman.Create();
        recipient.ImportSubjectPublicKeyInfo(recipientPublicKey, out _);
        var ephemeralPublic = ephemeral.ExportSubjectPublicKeyInfo();
        var key = DeriveKey(ephemeral.DeriveRawSecretAgreement(recipient.PublicKey), ephemeralPublic, recipientPublicKey);
        var nonce = RandomNumberGenerator.GetBytes(NonceBytes);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[TagBytes];
        using (var aes = new AesGcm(key, TagBytes))
        {
            aes.Encrypt(nonce, plaintext, ciphertext, tag, recipientPublicKey);
        }

        CryptographicOperations.ZeroMemory(key);
        return new SealedItem
        {
            EphemeralPublicKey = ByteString.CopyFrom(ephemeralPublic),
            Nonce = ByteString.CopyFrom(nonce),
            Ciphertext = ByteString.CopyFrom(ciphertext),
            Tag = ByteString.CopyFrom(tag),
        };
    }

    /// <summary>Opens an item sealed to <paramref name="recipient"/>.</summary>
    /// <exception cref="CryptographicException">The item was sealed to another key, or altered.</exception>
    public static byte[] Open(SealedItem item, PeerIdentity recipient)
    {
        ArgumentNullException.ThrowIfNull(item);
        ArgumentNullException.ThrowIfNull(recipient);
        if (item.Nonce.Length != NonceBytes || item.Tag.Length != TagBytes || !PublicKeys.IsValidP256(item.EphemeralPublicKey.Span))
        {
            throw new CryptographicException("sealed item is malformed");
        }

        var key = DeriveKey(recipient.Agree(item.EphemeralPublicKey.Span), item.EphemeralPublicKey.Span, recipient.PublicKey);
        var plaintext = new byte[item.Ciphertext.Length];
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(item.Nonce.Span, item.Ciphertext.Span, item.Tag.Span, plaintext, recipient.PublicKey);
            return plaintext;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private static byte[] DeriveKey(byte[] secret, ReadOnlySpan<byte> ephemeralPublic, ReadOnlySpan<byte> recipientPublic)
    {
        var salt = new byte[ephemeralPublic.Length + recipientPublic.Length];
        ephemeralPublic.CopyTo(salt);
        recipientPublic.CopyTo(salt.AsSpan(ephemeralPublic.Length));
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, 32, salt, Info);
        CryptographicOperations.ZeroMemory(secret);
        return key;
    }
}
