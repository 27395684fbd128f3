using Grpc.Core;
using Hybrid.Client.Daemon;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hybrid.Client.Tests;

/// <summary>What a remote peer learns when this daemon fails: a status and a sentence, no internal detail.</summary>
public sealed class PeerErrorTests
{
    private const string Secret = "/home/alice/.local/share/hybrid/store.db: SQLite Error 5: 'database is locked'";

    [Theory]
    [InlineData(typeof(IOException), StatusCode.Unavailable)]
    [InlineData(typeof(InvalidOperationException), StatusCode.Internal)]
    [InlineData(typeof(UnauthorizedAccessException), StatusCode.PermissionDenied)]
    public async Task ARemotePeerGetsAStatusAndASentenceButNoDetail(Type fault, StatusCode expected)
    {
        var interceptor = new PeerErrorInterceptor(NullLogger<PeerErrorInterceptor>.Instance);

        var ex = await Assert.ThrowsAsync<RpcException>(() => interceptor.UnaryServerHandler<string, string>("request", new Context(), (_, _) => throw (Exception)Activator.CreateInstance(fault, Secret)!));

        Assert.Equal(expected, ex.StatusCode);
        Assert.DoesNotContain("/home", ex.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("SQLite", ex.Status.Detail, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(ex.Status.Detail));
    }

    [Fact]
    public async Task TheLocalUserSeesTheDetail()
    {
        var interceptor = new ControlErrorInterceptor(NullLogger<ControlErrorInterceptor>.Instance);

        var ex = await Assert.ThrowsAsync<RpcException>(() => interceptor.UnaryServerHandler<string, string>("request", new Context(), (_, _) => throw new IOException(Secret)));

        Assert.Contains("database is locked", ex.Status.Detail, StringComparison.Ordinal);
    }

    private sealed class Context : ServerCallContext
    {
        protected override string MethodCore => "/hybrid.peer.v1.PeerLink/Chat";

        protected override string HostCore => "127.0.0.1";

        protected override string PeerCore => "ipv4:127.0.0.1:1";

        protected override DateTime DeadlineCore => DateTime.MaxValue;

        protected override Metadata RequestHeadersCore { get; } = [];

        protected override CancellationToken CancellationTokenCore => CancellationToken.None;

        protected override Metadata ResponseTrailersCore { get; } = [];

        protected override Status StatusCore { get; set; }

        protected override WriteOptions? WriteOptionsCore { get; set; }

        protected override AuthContext AuthContextCore => new(null, []);

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
