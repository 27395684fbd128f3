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
        app.MapGet("/api/chat", async (string? peer, long after, DesktopSession s, CancellationToken ct) =>
        {
            using var call = s.Control.ReadChat(new ReadChatRequest { PeerId = peer ?? string.Empty }, cancellationToken: ct);
            var entries = new List<object>();
            var index = 0L;
            await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
            {
                index++;
                if (index > after)
                {
                    entries.Add(new { index, peer = e.PeerId, direction = e.Direction, text = e.Text, status = e.Status, sent = e.SentMs });
                }
            }

            return Results.Json(new { count = index, entries });
        });
        app.MapGet("/api/download", (string order, DesktopSession s) =>
            s.Downloads.TryGetValue(order, out var d)
                ? Results.Json(new { received = d.Received, total = d.Total, path = d.Path, file = d.File, error = d.Error, running = d.Running })
                : Results.NotFound());
        await app.StartAsync(cancellationToken);
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return (app, $"http://127.0.0.1:{bound.Port}/?token={token.Value}");
    }
}
