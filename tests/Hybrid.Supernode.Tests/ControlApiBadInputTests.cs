using Grpc.Core;
using Hybrid.Client.Daemon;
using Hybrid.Protocol.Control;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// The daemon's control socket is owner-only, but what it is sent may still be wrong (a script's
/// bug, a stale token): each bad paging input gets InvalidArgument and a sentence, never a crash.
/// </summary>
public sealed class ControlApiBadInputTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task BadCursorsLimitsAndPageTokensAreRefusedWithAReadableSentence()
    {
        var user = new CliRunner(_temp.Sub("owner"));
        Assert.Equal(0, (await user.RunAsync("init", "--name", "Owner")).ExitCode);
        await using var daemon = await DaemonProcess.StartAsync(user, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        using var channel = ControlChannel.Open(user.Home);
        var control = ControlChannel.Client(channel);

        await Refused(async () => await ReadAllAsync(control.ReadChat(new ReadChatRequest { Limit = -1 })), "limit is 1-");
        await Refused(async () => await ReadAllAsync(control.ReadChat(new ReadChatRequest { After = -5 })), "after is a cursor");
        await Refused(async () => await ReadAllAsync(control.ReadChat(new ReadChatRequest { PeerId = "not-a-peer" })), "peer id");
        await Refused(async () => await control.ListOrdersAsync(new ListOrdersRequest { PageSize = -1 }), "page_size is 1-");
        foreach (var token in (string[])["bogus", "/x", "-1/x", "12a/x", new string('9', 40) + "/x"])
        {
            await Refused(async () => await control.ListOrdersAsync(new ListOrdersRequest { PageToken = token }), "page_token is not one this daemon gave out");
        }

        // Limits above the most are clamped, not refused; the daemon still answers.
        Assert.Empty((await control.ListOrdersAsync(new ListOrdersRequest { PageSize = int.MaxValue })).Orders);
    }

    [Fact]
    public async Task OrderStepsForUnknownOrdersOrWithOversizedTextsAreRefusedWithTheirStatus()
    {
        var user = new CliRunner(_temp.Sub("owner"));
        Assert.Equal(0, (await user.RunAsync("init", "--name", "Owner")).ExitCode);
        await using var daemon = await DaemonProcess.StartAsync(user, "--supernode", fixture.Node.GrpcUrl, "--listen", "127.0.0.1:0");
        using var channel = ControlChannel.Open(user.Home);
        var control = ControlChannel.Client(channel);
        var unknown = new OrderRef { OrderId = "AAAAAAAAAAAAAAAAAAAAAAAAAA" };

        await Refused(async () => await control.DisputeOrderAsync(new OrderRef { OrderId = unknown.OrderId, Text = new string('x', 501) }), "at most 500 characters");
        await Refused(async () => await control.FulfilOrderAsync(new OrderRef { OrderId = unknown.OrderId, Tracking = new string('x', 10_000) }), "at most 500 characters");
        foreach (var step in new Func<Task>[]
        {
            async () => await control.GetOrderAsync(unknown),
            async () => await control.DeclineOrderAsync(unknown),
            async () => await control.DecideOrderAsync(unknown),
            async () => await ReadAllAsync(control.WatchOrder(unknown)),
        })
        {
            var refused = await Assert.ThrowsAsync<RpcException>(step);
            Assert.Equal(StatusCode.NotFound, refused.StatusCode);
            Assert.Contains("no order AAAAAAAAAAAAAAAAAAAAAAAAAA", refused.Status.Detail, StringComparison.Ordinal);
        }
    }

    private static async Task ReadAllAsync<T>(AsyncServerStreamingCall<T> call)
    {
        using (call)
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        }
    }

    private static async Task Refused(Func<Task> call, string sentence)
    {
        var refused = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains(sentence, refused.Status.Detail, StringComparison.OrdinalIgnoreCase);
    }
}
