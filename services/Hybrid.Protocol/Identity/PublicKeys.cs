using System.Security.Cryptography;

namespace Hybrid.Protocol.Identity;

/// <summary>What a signature check found.</summary>
public enum SignatureCheck
{
    /// <summary>The signature was made by the key's owner over these bytes.</summary>
    Valid,

    /// <summary>The key is a P-256 key, but the signature does not match.</summary>
    Invalid,

    /// <summary>The bytes are not one P-256 public key.</summary>
    NotAKey,
}

/// <summary>Checks and uses peers' public keys as they arrive from the wire.</summary>
public static class PublicKeys
{
    private const string P256Oid = "1.2.840.10045.3.1.7";

    /// <summary>
    /// Verifies an ECDSA P-256 / SHA-256 signature made by the key in <paramref name="subjectPublicKeyInfo"/>.
    /// Returns false for a bad signature and for anything that is not a P-256 public key.
    /// </summary>
    public static bool VerifySignature(ReadOnlySpan<byte> subjectPublicKeyInfo, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        Verify(subjectPublicKeyInfo, data, signature) == SignatureCheck.Valid;

    /// <summary>
    /// Checks a signature. Imported keys are cached (a seller signs many listings; importing and
    /// validating the point costs more than the verification itself).
    /// </summary>
    public static SignatureCheck Verify(ReadOnlySpan<byte> subjectPublicKeyInfo, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        var cacheKey = Convert.ToBase64String(subjectPublicKeyInfo);
        if (!KeyCache.TryGetValue(cacheKey, out var cached))
        {
            var imported = TryImport(subjectPublicKeyInfo);
            if (imported is null)
            {
                return SignatureCheck.NotAKey;
            }

            if (KeyCache.Count >= MaxCachedKeys)
            {
                // Crude but bounded: a flood of fresh keys cannot grow the cache without limit.
                KeyCache.Clear();
            }

            cached = KeyCache.GetOrAdd(cacheKey, new CachedKey(imported));
        }

        // One key object is not documented as safe for concurrent use: verifications with the same
        // key take turns (on a lock of their own: locking the key object itself would give every
        // cached key a sync block).
        lock (cached.Gate)
        {
            return cached.Key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
                ? SignatureCheck.Valid
                : SignatureCheck.Invalid;
        }
    }

    private const int MaxCachedKeys = 16_384;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, CachedKey> KeyCache = new(StringComparer.Ordinal);

    private sealed class CachedKey(ECDsa key)
    {
        public ECDsa Key { get; } = key;

        public System.Threading.Lock Gate { get; } = new();
    }

    /// <summary>Whether the bytes are exactly one P-256 SubjectPublicKeyInfo.</summary>
    public static bool IsValidP256(ReadOnlySpan<byte> subjectPublicKeyInfo)
    {
        using var key = TryImport(subjectPublicKeyInfo);
        return key is not null;
    }

    private static ECDsa? TryImport(ReadOnlySpan<byte> subjectPublicKeyInfo)
    {
        if (subjectPublicKeyInfo.IsEmpty)
        {
            return null;
        }

        var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(subjectPublicKeyInfo, out var read);
            if (read == subjectPublicKeyInfo.Length && key.ExportParameters(false).Curve.Oid.Value == P256Oid)
            {
                return key;
            }
        }
        catch (CryptographicException)
        {
            // Not a key: the caller reports it as such.
        }

        key.Dispose();
        return null;
    }
}
