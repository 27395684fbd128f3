namespace Hybrid.Testing;

/// <summary>A real redis-server and several supernode processes forming one cluster on it.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly TempDir _temp = new();

    private TestCluster(RedisServer redis) => Redis = redis;

    public RedisServer Redis { get; }

    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}"[..16];

    public List<SupernodeProcess> Nodes { get; } = [];

    public static async Task<TestCluster> StartAsync(int size, params string[] extraArgs)
    {
        var cluster = new TestCluster(await RedisServer.StartAsync());
        try
        {
            for (var i = 0; i < size; i++)
            {
                cluster.Nodes.Add(SupernodeProcess.Launch(
                    cluster._temp.Sub($"sn{i + 1}"),
                    [
                        $"--Supernode:Redis={cluster.Redis.ConnectionString}",
                        $"--Supernode:ClusterId={cluster.ClusterId}",
                        $"--Supernode:SiloPort={Ports.Free()}",
                        $"--Supernode:GatewayPort={Ports.Free()}",
                        "--Supernode:AdvertisedUrl=http://127.0.0.1:{grpcPort}",
                        .. extraArgs,
                    ]));
            }

            await Task.WhenAll(cluster.Nodes.Select(n => n.WaitReadyAsync()));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }

        await Redis.DisposeAsync();
        _temp.Dispose();
    }
}
