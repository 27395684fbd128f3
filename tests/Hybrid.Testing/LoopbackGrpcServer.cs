using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hybrid.Testing;

/// <summary>
/// A small gRPC server in the test process on a loopback port of its own (Kestrel, HTTP/2, port 0):
/// a hostile or scripted supernode that real clients talk to over real sockets.
/// </summary>
public sealed class LoopbackGrpcServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LoopbackGrpcServer(WebApplication app)
    {
        _app = app;
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
    }

    /// <summary>The server's URL (http://127.0.0.1:port).</summary>
    public string Url { get; }

    /// <summary>Starts a server for <typeparamref name="TService"/>, with <paramref name="services"/> registering what it needs.</summary>
    public static Task<LoopbackGrpcServer> StartAsync<TService>(Action<IServiceCollection>? services = null)
        where TService : class =>
        StartAsync(services, app => app.MapGrpcService<TService>());

    /// <summary>The same with two services (e.g. a session and a mailbox).</summary>
    public static Task<LoopbackGrpcServer> StartAsync<TService, TOther>(Action<IServiceCollection>? services = null)
        where TService : class
        where TOther : class =>
        StartAsync(services, app =>
        {
            app.MapGrpcService<TService>();
            app.MapGrpcService<TOther>();
        });

    private static async Task<LoopbackGrpcServer> StartAsync(Action<IServiceCollection>? services, Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        // Only the port chosen here, whatever appsettings.json lies beside the tests (the supernode's does).
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        services?.Invoke(builder.Services);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        return new LoopbackGrpcServer(app);
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
