using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Hybrid.Protocol.Identity;

/// <summary>
/// A peer's key pair (ECDSA P-256). It signs everything the peer publishes and, later,
/// makes the certificate of the peer's own host. The private key never leaves this object
/// except through <see cref="ExportPrivateKeyPem"/>.
/// </summary>
public sealed class PeerIdentity : IDisposable
{
    private readonly ECDsa _key;

    private PeerIdentity(ECDsa key)
    {
        _key = key;
        PublicKey = key.ExportSubjectPublicKeyInfo();
        Id = PeerId.FromPublicKey(PublicKey);
    }

    /// <summary>The public key as SubjectPublicKeyInfo (DER), as it travels on the wire.</summary>
    public byte[] PublicKey { get; }

    /// <summary>The peer's id, derived from <see cref="PublicKey"/>.</summary>
    public PeerId Id { get; }

    /// <summary>Creates a new random identity.</summary>
    public static PeerIdentity Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Loads an identity from a PKCS#8 PEM private key.</summary>
    /// <exception cref="CryptographicException">The PEM holds no P-256 private key.</exception>
    public static PeerIdentity FromPrivateKeyPem(string pem)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256)
            {
                throw new CryptographicException($"expected a P-256 key, found a {key.KeySize}-bit key");
            }

            return new PeerIdentity(key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>The private key as PKCS#8 PEM; store it readable by its owner only.</summary>
    public string ExportPrivateKeyPem() => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>Signs <paramref name="data"/> (SHA-256, IEEE P1363 format).</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) =>
        _key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    /// <summary>
    /// A self-signed certificate over this key for the peer's own host, usable as TLS server and as
    /// client certificate. Nobody trusts it by its chain: each side pins the PeerId its key hashes to.
    /// </summary>
    public X509Certificate2 CreateCertificate(DateTimeOffset now, TimeSpan validity)
    {
        var request = new CertificateRequest($"CN={Id}", _key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "serverAuth"), new Oid("1.3.6.1.5.5.7.3.2", "clientAuth")], false));
        return request.CreateSelfSigned(now.AddHours(-1), now + validity);
    }

    /// <summary>
    /// ECDH agreement between this key and <paramref name="otherPublicKey"/> (SubjectPublicKeyInfo):
    /// the raw shared secret, to be fed through a KDF. Used to open items sealed to this peer.
    /// </summary>
    public byte[] Agree(ReadOnlySpan<byte> otherPublicKey)
    {
        using var mine = ECDiffieHellman.Create(_key.ExportParameters(includePrivateParameters: true));
        using var other = ECDiffieHellman.Create();
        other.ImportSubjectPublicKeyInfo(otherPublicKey, out _);
        return mine.DeriveRawSecretAgreement(other.PublicKey);
    }

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();
}
