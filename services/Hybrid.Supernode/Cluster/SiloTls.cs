using System.Security.Cryptography.X509Certificates;
using Hybrid.Supernode.Configuration;
using Orleans.Connections.Security;

namespace Hybrid.Supernode.Cluster;

/// <summary>
/// Admission of supernodes: every silo of a cluster fully trusts the others, so silo and gateway
/// sockets run mutual TLS and a peer silo is accepted only with a certificate that chains to the
/// cluster's CA. The CA alone decides: host names are not checked (silos dial each other by IP).
/// </summary>
public static class SiloTls
{
    /// <summary>Turns TLS on for the silo when <see cref="SupernodeOptions.SiloCertificate"/> is set.</summary>
    public static void Configure(ISiloBuilder silo, SupernodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.HasSiloTls)
        {
            return;
        }

        var (certificate, authority) = Load(options);
        silo.UseTls(certificate, tls =>
        {
            tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            tls.HandshakeTimeout = TimeSpan.FromSeconds(5);
            tls.RemoteCertificateValidation = (remote, _, _) => IssuedBy(remote, authority);
        });
    }

    /// <summary>Loads this supernode's certificate (with its key) and the cluster CA from PEM files.</summary>
    public static (X509Certificate2 Certificate, X509Certificate2 Authority) Load(SupernodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var certificate = X509Certificate2.CreateFromPemFile(options.SiloCertificate!, options.SiloKey);
        var authority = X509Certificate2.CreateFromPem(File.ReadAllText(options.SiloCa!));
        return (certificate, authority);
    }

    /// <summary>Whether <paramref name="remote"/> chains to <paramref name="authority"/> (and only to it).</summary>
    public static bool IssuedBy(X509Certificate2? remote, X509Certificate2 authority)
    {
        if (remote is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(remote);
    }
}
