using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Testing;
using Microsoft.Extensions.Configuration;

namespace Hybrid.Supernode.Tests;

/// <summary>Only supernodes holding a certificate from the cluster's CA can join its silos.</summary>
public sealed class SiloAdmissionTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ASupernodeWithoutACertificateFromTheClusterCaCannotJoin()
    {
        var cluster = Issue("cluster-ca", "member");
        var rogue = Issue("rogue-ca", "rogue");
        await using var redis = await RedisServer.StartAsync();
        await using var members = await TestCluster.StartAsync(2, redis, TlsArgs(cluster));
        var urls = members.Nodes.Select(n => n.GrpcUrl).Order().ToList();

        // One with a certificate from another CA, one with no TLS at all: same Redis, same cluster id.
        await using var withForeignCa = Join(members, redis, TlsArgs(rogue));
        await using var withoutTls = Join(members, redis, []);

        await Eventually.TrueAsync(() => Task.FromResult(withForeignCa.HasExited && withoutTls.HasExited), Deadline, "both unadmitted supernodes to give up and stop");
        Assert.Contains("rejected", withForeignCa.Output, StringComparison.OrdinalIgnoreCase);

        foreach (var member in members.Nodes)
        {
            var listed = await member.Client.Directory.ListSupernodesAsync(new ListSupernodesRequest());
            Assert.Equal(urls, listed.Supernodes.Select(s => s.Url).Order());
            using var http = new HttpClient();
            Assert.True((await http.GetAsync(new Uri($"{member.OpsUrl}/readyz"))).IsSuccessStatusCode, $"{member.GrpcUrl} stopped being ready");
        }
    }

    [Fact]
    public void ACertificateNotIssuedByTheConfiguredCaIsRefusedAtStartWithOneLine()
    {
        var cluster = Issue("cluster-ca", "member");
        var other = Issue("other-ca", "other");
        var settings = new Dictionary<string, string?>
        {
            ["Supernode:SiloCertificate"] = other.Certificate,
            ["Supernode:SiloKey"] = other.Key,
            ["Supernode:SiloCa"] = cluster.Authority,
        };

        var ex = Assert.Throws<SupernodeConfigurationException>(() => SupernodeConfiguration.Load(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()));
        Assert.Contains("not issued by Supernode:SiloCa", ex.Message, StringComparison.Ordinal);

        settings["Supernode:SiloCa"] = null;
        settings["Supernode:SiloCertificate"] = cluster.Certificate;
        Assert.Contains("go together", Assert.Throws<SupernodeConfigurationException>(() => SupernodeConfiguration.Load(new ConfigurationBuilder().AddInMemoryCollection(settings).Build())).Message, StringComparison.Ordinal);
    }

    private static string[] TlsArgs(IssuedFiles files) =>
        [$"--Supernode:SiloCertificate={files.Certificate}", $"--Supernode:SiloKey={files.Key}", $"--Supernode:SiloCa={files.Authority}"];

    private SupernodeProcess Join(TestCluster cluster, RedisServer redis, string[] tls) => SupernodeProcess.Launch(
        _temp.Sub($"joiner-{Guid.NewGuid():N}"),
        [
            $"--Supernode:Redis={redis.ConnectionString}",
            $"--Supernode:ClusterId={cluster.ClusterId}",
            $"--Supernode:SiloPort={Ports.Free()}",
            $"--Supernode:GatewayPort={Ports.Free()}",
            .. tls,
        ]);

    /// <summary>A CA and one certificate it issued (server and client auth), as PEM files.</summary>
    private IssuedFiles Issue(string authorityName, string subject)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN={authorityName}", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var now = DateTimeOffset.UtcNow;
        using var authority = caRequest.CreateSelfSigned(now.AddHours(-1), now.AddDays(1));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(authority, now.AddHours(-1), now.AddDays(1), RandomNumberGenerator.GetBytes(8));

        var files = new IssuedFiles(_temp.Sub($"{subject}.crt"), _temp.Sub($"{subject}.key"), _temp.Sub($"{authorityName}.crt"));
        File.WriteAllText(files.Certificate, issued.ExportCertificatePem());
        File.WriteAllText(files.Key, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(files.Authority, authority.ExportCertificatePem());
        return files;
    }

    private sealed record IssuedFiles(string Certificate, string Key, string Authority);
}
