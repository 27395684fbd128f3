using System.Net;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

public sealed class OperationsTests
{
    private static readonly HttpClient Http = new();

    [Fact]
    public async Task GenericGrpcToolsCanDiscoverAndHealthCheckTheApi()
    {
        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"));
        using var channel = GrpcChannel.ForAddress(node.GrpcUrl);

        var reflection = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo();
        await reflection.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = string.Empty });
        await reflection.RequestStream.CompleteAsync();
        Assert.True(await reflection.ResponseStream.MoveNext(default));
        var services = reflection.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());

        Assert.Contains("hybrid.v1.ListingsApi", services);
        Assert.Contains("grpc.health.v1.Health", services);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task ProbesAndMetricsAnswerOnTheOpsListenerOnly()
    {
        using var temp = new TempDir();
        await using var node = await SupernodeProcess.StartAsync(temp.Sub("data"));
        await node.Client.Directory.ListSupernodesAsync(new ListSupernodesRequest());

        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(new Uri($"{node.OpsUrl}/healthz"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(new Uri($"{node.OpsUrl}/readyz"))).StatusCode);
        var metrics = await Http.GetStringAsync(new Uri($"{node.OpsUrl}/metrics"));
        Assert.Contains("hybrid_sessions_active 0", metrics, StringComparison.Ordinal);
        Assert.Contains("hybrid_sessions_opened_total 0", metrics, StringComparison.Ordinal);
        Assert.Contains("microsoft_orleans_", metrics, StringComparison.Ordinal);
        // ASP.NET Core's meters publish their series once they have measured something.
        await Eventually.TrueAsync(
            async () => (await Http.GetStringAsync(new Uri($"{node.OpsUrl}/metrics"))).Contains("microsoft_aspnetcore_hosting_", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30),
            "ASP.NET Core hosting meters in /metrics");

        // The public listener speaks HTTP/2 only and never serves the ops paths.
        using var h2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        Assert.Equal(HttpStatusCode.NotFound, (await h2.GetAsync(new Uri($"{node.GrpcUrl}/metrics"))).StatusCode);
    }
}
