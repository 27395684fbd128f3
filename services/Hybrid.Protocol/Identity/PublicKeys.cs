using System.Security.Cryptography;

namespace Hybrid.Protocol.Identity;

/// <summary>Checks and uses peers' public keys as they arrive from the wire.</summary>
public static class PublicKeys
{
    private const string P256Oid = "1.2.840.10045.3.1.7";

    /// <summary>
    /// Verifies an ECDSA P-256 / SHA-256 signature made by the key in <paramref name="subjectPublicKeyInfo"/>.
    /// Returns false for a bad signature and for anything that is not a P-256 public key.
    /// </summary>
    public static bool VerifySignature(ReadOnlySpan<byte> subjectPublicKeyInfo, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        using var key = TryImport(subjectPublicKeyInfo);
        return key is not null &&
               key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
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
