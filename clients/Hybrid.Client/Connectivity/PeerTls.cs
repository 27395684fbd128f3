using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Hybrid.Protocol.Identity;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// Mutual TLS between peers, pinned to identities: each side's certificate is self-signed by its
/// peer key, so chains and names mean nothing; what counts is that the key hashes to the PeerId
/// the dialer meant to reach. A wrong key fails the handshake before any request is sent.
/// </summary>
public static class PeerTls
{
    /// <summary>Client-side TLS options for dialing <paramref name="expected"/>.</summary>
    public static SslClientAuthenticationOptions ClientOptions(X509Certificate2 own, PeerId expected) => new()
    {
        // An IP literal as target host: no name leaks in plaintext SNI (through a relay, too).
        TargetHost = string.Empty,
        ClientCertificates = [own],
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        EnabledSslProtocols = SslProtocols.Tls13,
        ApplicationProtocols = [SslApplicationProtocol.Http2],
        RemoteCertificateValidationCallback = (_, certificate, _, _) => PeerCertificates.Belongs(certificate, expected),
    };
}

/// <summary>The peer at an address presented a key other than the one dialed: an impostor or a stale address.</summary>
public sealed class PeerKeyMismatchException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PeerKeyMismatchException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public PeerKeyMismatchException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public PeerKeyMismatchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>No path (direct or relayed) reached the peer now.</summary>
public sealed class PeerUnreachableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PeerUnreachableException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public PeerUnreachableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public PeerUnreachableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
