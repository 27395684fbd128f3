using Grpc.Core;
using Hybrid.Supernode.Api;

namespace Hybrid.Supernode.Tests;

/// <summary>How a call's first message (a hello, a relay's opening frame) ends when the peer does not send it.</summary>
public sealed class FirstMessageTests
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(1);

    /// <summary>A request stream that answers each read as it is told to.</summary>
    private sealed class Stream(Func<CancellationToken, Task<bool>> read) : IAsyncStreamReader<string>
    {
        public string Current => "first";

        public Task<bool> MoveNext(CancellationToken cancellationToken) => read(cancellationToken);
    }

    [Fact]
    public async Task TheFirstMessageIsReturnedAndAStreamClosedWithoutOneIsNull()
    {
        Assert.Equal("first", await FirstMessage.ReadAsync(new Stream(_ => Task.FromResult(true)), Long, "hello", CancellationToken.None));
        Assert.Null(await FirstMessage.ReadAsync(new Stream(_ => Task.FromResult(false)), Long, "hello", CancellationToken.None));
    }

    [Fact]
    public async Task AResetThatReachesTheReadBeforeTheCallIsAbortedIsThePeerLeavingNotAnError()
    {
        // Kestrel fails the body pipe with an IOException before it cancels the reset call's token.
        var ex = await Assert.ThrowsAsync<RpcException>(() => FirstMessage.ReadAsync(new Stream(_ => Task.FromException<bool>(new IOException("The request stream was aborted."))), Long, "relay frame", CancellationToken.None));

        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        Assert.Equal("the stream closed before the relay frame", ex.Status.Detail);
    }

    [Fact]
    public async Task SilenceIsDeadlineExceededWithTheTimeoutSaid()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => FirstMessage.ReadAsync(new Stream(async token => { await Task.Delay(Timeout.Infinite, token); return true; }), TimeSpan.FromMilliseconds(100), "hello", CancellationToken.None));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.StartsWith("no hello within 0.1 s", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACallAbortedByItsPeerStaysACancellation()
    {
        // The interceptor maps it as it maps any call its peer cancelled.
        using var aborted = new CancellationTokenSource();
        var read = FirstMessage.ReadAsync(new Stream(async token => { await Task.Delay(Timeout.Infinite, token); return true; }), Long, "hello", aborted.Token);
        await aborted.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);
    }
}
