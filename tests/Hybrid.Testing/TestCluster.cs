namespace Hybrid.Testing;

/// <summary>A real redis-server and several supernode processes forming one cluster on it.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly TempDir _temp = new();
    private readonly bool _ownsRedis;

    private TestCluster(RedisServer redis, bool ownsRedis)
    {
        Redis = redis;
        _ownsRedis = ownsRedis;
    }

    public RedisServer Redis { get; }

    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}"[..16];

    public List<SupernodeProcess> Nodes { get; } = [];

    /// <summary>Starts a redis-server of its own and <paramref name="size"/> supernodes on it.</summary>
    public static async Task<TestCluster> StartAsync(int size, params string[] extraArgs) =>
        await StartAsync(new TestCluster(await RedisServer.StartAsync(), ownsRedis: true), size, extraArgs, null);

    /// <summary>Starts <paramref name="size"/> supernodes on a redis-server the caller owns (and keeps).</summary>
    public static Task<TestCluster> StartAsync(int size, RedisServer redis, string[] extraArgs, TimeSpan? readyTimeout = null) =>
        StartAsync(new TestCluster(redis, ownsRedis: false), size, extraArgs, readyTimeout);

    private static async Task<TestCluster> StartAsync(TestCluster cluster, int size, string[] extraArgs, TimeSpan? readyTimeout)
    {
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

            await Task.WhenAll(cluster.Nodes.Select(n => n.WaitReadyAsync(readyTimeout)));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops every supernode but leaves Redis running.</summary>
    public async Task DisposeNodesAsync()
    {
        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }

        Nodes.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        await DisposeNodesAsync();
        if (_ownsRedis)
        {
            await Redis.DisposeAsync();
        }

        _temp.Dispose();
    }
}
