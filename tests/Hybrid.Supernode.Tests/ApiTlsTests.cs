using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>The public API served over TLS with an operator's certificate, by standard Kestrel settings.</summary>
public sealed class ApiTlsTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task TheGrpcEndpointServesTlsWithTheOperatorsCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=supernode.example.org", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        var (certPath, keyPath) = (_temp.Sub("api.crt"), _temp.Sub("api.key"));
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
        var port = Ports.Free();
        var https = $"https://127.0.0.1:{port}";

        await using var node = await SupernodeProcess.StartAsync(
            _temp.Sub("sn"),
            $"--Kestrel:Endpoints:Grpc:Url={https}",
            $"--Kestrel:Endpoints:Grpc:Certificate:Path={certPath}",
            $"--Kestrel:Endpoints:Grpc:Certificate:KeyPath={keyPath}");

        // A client that trusts this certificate (as one trusts a public CA's) talks gRPC over TLS.
        using var trusted = GrpcChannel.ForAddress(https, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == certificate.GetCertHashString() } },
            DisposeHttpClient = true,
        });
        var listed = await new Protocol.Api.SupernodeClients(trusted).Directory.ListSupernodesAsync(new ListSupernodesRequest());
        Assert.Equal(https, Assert.Single(listed.Supernodes).Url);

        // A peer's session names the key it verified in the handshake, and the supernode checks it against its own.
        using var peer = PeerIdentity.Generate();
        await using (var connection = new SupernodeConnection(peer, new SupernodeConnectionOptions
        {
            Seeds = [https],
            DisplayName = "Tess",
            ServerCertificateValidation = (presented, _) => presented.GetCertHashString() == certificate.GetCertHashString(),
        }))
        {
            connection.Start();
            Assert.Equal(https, await connection.WaitForSessionAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        // A proof naming another key (what a peer talking to an interceptor would sign) is refused.
        var clients = new Protocol.Api.SupernodeClients(trusted);
        using (var raw = await RawSession.OpenAsync(clients))
        {
            using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var interceptor = new CertificateRequest("CN=supernode.example.org", other, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
            await raw.SendHelloAsync(RawSession.Proof(peer, raw.Challenge, TlsKeys.Sha256(interceptor)));
            var intercepted = await Assert.ThrowsAsync<RpcException>(() => raw.ReadAsync());
            Assert.Equal(StatusCode.Unauthenticated, intercepted.StatusCode);
            Assert.Contains("TLS key", intercepted.Status.Detail, StringComparison.Ordinal);
        }

        using (var raw = await RawSession.OpenAsync(clients))
        {
            await raw.SendHelloAsync(RawSession.Proof(peer, raw.Challenge, TlsKeys.Sha256(certificate)));
            Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await raw.ReadAsync()).KindCase);
        }

        // Cleartext HTTP/2 to the TLS port gets nowhere.
        using var cleartext = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var refused = await Assert.ThrowsAsync<RpcException>(() => new Protocol.Api.SupernodeClients(cleartext).Directory.ListSupernodesAsync(new ListSupernodesRequest(), deadline: DateTime.UtcNow.AddSeconds(5)).ResponseAsync);
        Assert.Contains(refused.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Internal, StatusCode.DeadlineExceeded });
    }
}
