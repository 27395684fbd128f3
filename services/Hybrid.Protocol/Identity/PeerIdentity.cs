using System.Security.Cryptography;

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

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();
}
