using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography.X509Certificates;

namespace Hybrid.Protocol.Identity;

/// <summary>Pins peer links to identities: a certificate stands for the PeerId its key hashes to.</summary>
public static class PeerCertificates
{
    /// <summary>The PeerId a certificate's public key hashes to, if it is a P-256 key.</summary>
    public static bool TryGetPeerId([NotNullWhen(true)] X509Certificate? certificate, out PeerId peer)
    {
        peer = default;
        if (certificate is null)
        {
            return false;
        }

        byte[] spki;
        if (certificate is X509Certificate2 typed)
        {
            spki = typed.PublicKey.ExportSubjectPublicKeyInfo();
        }
        else
        {
            using var loaded = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            spki = loaded.PublicKey.ExportSubjectPublicKeyInfo();
        }

        if (!PublicKeys.IsValidP256(spki))
        {
            return false;
        }

        peer = PeerId.FromPublicKey(spki);
        return true;
    }

    /// <summary>Whether <paramref name="certificate"/> belongs to <paramref name="expected"/>.</summary>
    public static bool Belongs(X509Certificate? certificate, PeerId expected) =>
        TryGetPeerId(certificate, out var actual) && actual.Equals(expected);
}
