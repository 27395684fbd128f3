using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Hybrid.Protocol.Identity;

/// <summary>
/// A TLS server's identity as a session proof names it: the SHA-256 of the certificate's
/// SubjectPublicKeyInfo, so a renewed certificate with the same key keeps the same identity.
/// </summary>
public static class TlsKeys
{
    /// <summary>The SHA-256 of <paramref name="certificate"/>'s SubjectPublicKeyInfo.</summary>
    public static byte[] Sha256(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo());
    }

    /// <summary>Parses a hex or base64 SHA-256 as an operator writes it; null when it is neither.</summary>
    public static byte[]? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim().Replace(":", string.Empty, StringComparison.Ordinal);
        try
        {
            var bytes = trimmed.Length == 64 ? Convert.FromHexString(trimmed) : Convert.FromBase64String(trimmed);
            return bytes.Length == 32 ? bytes : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
