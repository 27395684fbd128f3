using System.Net;
using Grpc.Core;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Api;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>Who a caller is for budgets: the socket address, a trusted proxy's word for it, IPv6 by /64.</summary>
public sealed class ClientAddressTests : IAsyncLifetime, IDisposable
{
    private const int Burst = 5;
    private readonly TempDir _temp = new();
    private SupernodeProcess _node = null!;

    public async Task InitializeAsync() =>
        // 127.0.0.1 plays the operator's ingress; a small budget makes it quick to spend.
        _node = await SupernodeProcess.StartAsync(_temp.Sub("data"), "--Supernode:TrustedProxies=127.0.0.1", $"--Supernode:RequestBurst={Burst}", "--Supernode:RequestsPerSecond=1");

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        _temp.Dispose();
    }

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:3::1", "2001:db8:1:3::/64")]
    [InlineData("::ffff:203.0.113.9", "203.0.113.9")]
    [InlineData("203.0.113.9", "203.0.113.9")]
    public void IPv6CallersShareABudgetPerSlash64(string address, string key) =>
        Assert.Equal(key, ClientAddresses.Key(IPAddress.Parse(address)));

    [Fact]
    public async Task ATrustedProxyNamesTheClientAndAnyoneElsesHeaderIsIgnored()
    {
        using var proxy = LoopbackSource.Channel(_node.GrpcUrl, "127.0.0.1");
        using var stranger = LoopbackSource.Channel(_node.GrpcUrl, "127.0.0.2");
        var viaProxy = new Protocol.Api.SupernodeClients(proxy);
        var direct = new Protocol.Api.SupernodeClients(stranger);

        // Behind the proxy, each client has its own budget.
        var first = await SpendAsync(viaProxy, "203.0.113.7");
        Assert.InRange(first, Burst, Burst + 2);
        Assert.Equal(StatusCode.OK, await CallAsync(viaProxy, "203.0.113.8"));

        // From an address that is not a trusted proxy the header changes nothing: the socket pays.
        var spent = await SpendAsync(direct, "203.0.113.20");
        Assert.InRange(spent, Burst, Burst + 2);
        Assert.Equal(StatusCode.ResourceExhausted, await CallAsync(direct, "203.0.113.21"));
    }

    /// <summary>Calls until refused; returns how many calls were served.</summary>
    private static async Task<int> SpendAsync(Protocol.Api.SupernodeClients client, string forwardedFor)
    {
        for (var served = 0; served < 50; served++)
        {
            if (await CallAsync(client, forwardedFor) == StatusCode.ResourceExhausted)
            {
                return served;
            }
        }

        throw new InvalidOperationException($"50 calls as {forwardedFor} were all served: no budget applied");
    }

    private static async Task<StatusCode> CallAsync(Protocol.Api.SupernodeClients client, string forwardedFor)
    {
        try
        {
            await client.Directory.ListSupernodesAsync(new ListSupernodesRequest(), new Metadata { { "x-forwarded-for", forwardedFor } });
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }
}
