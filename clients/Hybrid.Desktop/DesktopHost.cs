using System.Net;
using Grpc.Core;
using Hybrid.Desktop.Services;
using Hybrid.Protocol.Control;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hybrid.Desktop;

/// <summary>Hosts the desktop UI on 127.0.0.1, behind a random access token.</summary>
public static class DesktopHost
{
    /// <summary>Starts the UI for <paramref name="session"/> on <paramref name="port"/> (0: any free port); returns the app and the URL to open.</summary>
    public static async Task<(WebApplication App, string Url)> StartAsync(DesktopSession session, int port, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        var token = new AccessToken();
        // No configuration file is reloaded, so none is watched (each watcher is one of the user's 128 inotify instances).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(DesktopHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 8L * 1024 * 1024 * 1024;
            k.Listen(IPAddress.Loopback, port);
        });
        builder.Services.Configure<FormOptions>(o => o.MultipartBodyLengthLimit = 8L * 1024 * 1024 * 1024);
        builder.Services.AddSingleton(session);
        builder.Services.AddRazorPages();
        builder.Services.AddAntiforgery(o =>
        {
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.HttpOnly = true;
        });
        var app = builder.Build();
        app.Use(token.Guard);
        app.Use(async (context, next) =>
        {
            context.Response.Headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";
            context.Response.Headers["X-Frame-Options"] = "DENY";
            context.Response.Headers["Referrer-Policy"] = "no-referrer";
            await next(context);
        });
        app.MapRazorPages();
        // New chat messages as server-sent events, from a cursor: the daemon pushes each one as it is stored.
        app.MapGet("/api/chat", (string? peer, long? after, DesktopSession s, CancellationToken ct) =>
            TypedResults.ServerSentEvents(ChatEvents(s, peer, after ?? 0, ct), eventType: "chat"));
        // A listing's full photo: fetched once from the seller (free content), kept in the home, shown
        // only if it decodes within the limits.
        app.MapGet("/photo/{contentId}", async (string contentId, string seller, DesktopSession s, CancellationToken ct) =>
            await s.PhotoAsync(contentId, seller, ct) is { } file ? Results.File(file, "image/jpeg") : Results.NotFound());
        // An order as it changes, as server-sent events: its page reloads when the other side takes a step.
        app.MapGet("/api/order", (string id, DesktopSession s, CancellationToken ct) =>
            TypedResults.ServerSentEvents(OrderEvents(s, id, ct), eventType: "order"));
        app.MapGet("/api/download", (string order, DesktopSession s) =>
            s.Downloads.TryGetValue(order, out var d)
                ? Results.Json(new { received = d.Received, total = d.Total, path = d.Path, file = d.File, error = d.Error, running = d.Running })
                : Results.NotFound());
        await app.StartAsync(cancellationToken);
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return (app, $"http://127.0.0.1:{bound.Port}/?token={token.Value}");
    }

    private static async IAsyncEnumerable<object> OrderEvents(DesktopSession session, string orderId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var call = session.Control.WatchOrder(new OrderRef { OrderId = orderId }, cancellationToken: cancellationToken);
        await foreach (var o in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            yield return new { state = o.State, updated = o.UpdatedMs, steps = o.Timeline.Count };
        }
    }

    private static async IAsyncEnumerable<object> ChatEvents(DesktopSession session, string? peer, long after, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var call = session.Control.ReadChat(new ReadChatRequest { PeerId = peer ?? string.Empty, After = after, Follow = true }, cancellationToken: cancellationToken);
        await foreach (var e in call.ResponseStream.ReadAllAsync(cancellationToken))
        {
            yield return new { cursor = e.Cursor, peer = e.PeerId, direction = e.Direction, text = e.Text, status = e.Status, sent = e.SentMs };
        }
    }
}
