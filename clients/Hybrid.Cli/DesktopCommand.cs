using System.CommandLine;
using System.Diagnostics;
using Grpc.Core;
using Hybrid.Client.Daemon;
using Hybrid.Desktop;
using Hybrid.Desktop.Services;
using Hybrid.Protocol.Control;
using Microsoft.Extensions.Logging;

namespace Hybrid.Cli;

/// <summary><c>hybrid desktop</c>: the marketplace in the browser, served on 127.0.0.1.</summary>
internal static class DesktopCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1 for the app (0: any free port).", DefaultValueFactory = _ => 0 };
        var listen = new Option<string?>("--listen") { Description = "IP:PORT for this peer's own host, when the app starts the daemon (saved)." };
        var privacy = new Option<bool>("--private") { Description = "When the app starts the daemon: privacy mode (every peer link relayed)." };
        var noBrowser = new Option<bool>("--no-browser") { Description = "Print the link without opening a browser." };
        var command = new Command("desktop", "Open the marketplace in your browser: starts the daemon (or uses the running one) and serves the app on 127.0.0.1 behind a one-time link.") { port, listen, privacy, noBrowser };
        command.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            var settings = PeerCommands.SaveNetworkSettings(context, parse.GetValue(listen), null, parse.GetValue(privacy) || context.Home.LoadSettings().Private);
            using var logging = PeerCommands.ConsoleLogging(LogLevel.Warning);
            var daemon = await DaemonAnswersAsync(context.Home.Path, cancellationToken)
                ? null
                : await PeerCommands.StartDaemonAsync(context, identity, settings, 0, logging, cancellationToken);
            try
            {
                using var session = new DesktopSession(context.Home.Path, identity, settings.Supernodes, settings.DisplayName);
                var (app, url) = await DesktopHost.StartAsync(session, parse.GetValue(port), cancellationToken);
                await using (app)
                {
                    Console.WriteLine($"Hybrid desktop for {identity.Id} ({settings.DisplayName}){(daemon is null ? ", using the running daemon" : string.Empty)}");
                    Console.WriteLine($"open: {url}");
                    if (!parse.GetValue(noBrowser))
                    {
                        TryOpenBrowser(url);
                    }

                    try
                    {
                        await Task.Delay(Timeout.Infinite, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        Console.WriteLine("closed");
                    }
                }
            }
            finally
            {
                if (daemon is not null)
                {
                    await daemon.DisposeAsync();
                }
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task<bool> DaemonAnswersAsync(string home, CancellationToken cancellationToken)
    {
        if (!ControlChannel.Exists(home))
        {
            return false;
        }

        using var channel = ControlChannel.Open(home);
        try
        {
            await ControlChannel.Client(channel).StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: cancellationToken);
            return true;
        }
        catch (RpcException)
        {
            return false;
        }
    }

    private static void TryOpenBrowser(string url)
    {
        try
        {
            using var opener = Process.Start(new ProcessStartInfo(OperatingSystem.IsMacOS() ? "open" : "xdg-open", url) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true });
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Console.WriteLine("(no browser could be opened here: open the link yourself)");
        }
    }
}
