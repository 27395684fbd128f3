using System.CommandLine;
using System.Text.Json;
using Grpc.Core;
using Hybrid.Client.Daemon;
using Hybrid.Client.Home;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Control;

namespace Hybrid.Cli;

/// <summary>Exit codes: distinct for each kind of failure, so scripts can tell them apart.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Usage = 2;
    public const int NotFound = 3;
    public const int Unreachable = 4;
    public const int Refused = 5;
}

/// <summary>A command's failure, with the one line to print and the exit code.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>What every command gets: the home directory, output mode and supernodes.</summary>
internal sealed class CliContext(ParseResult parse)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static readonly Option<string?> HomeOption = new("--home") { Description = "Home directory (default: $HYBRID_HOME, else ~/.local/share/hybrid).", Recursive = true };
    public static readonly Option<bool> JsonOption = new("--json") { Description = "Machine-readable output.", Recursive = true };
    public static readonly Option<string?> SupernodeOption = new("--supernode") { Description = "Supernode URL(s), comma-separated (default: the saved list).", Recursive = true };

    public PeerHome Home { get; } = PeerHome.Resolve(parse.GetValue(HomeOption));

    public bool JsonOutput { get; } = parse.GetValue(JsonOption);

    /// <summary>The supernodes to use: --supernode, else the list saved in the home directory.</summary>
    public IReadOnlyList<string> Supernodes()
    {
        var given = parse.GetValue(SupernodeOption);
        var urls = string.IsNullOrWhiteSpace(given)
            ? Home.LoadSettings().Supernodes
            : [.. given.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        foreach (var url in urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                throw new CliException(ExitCodes.Usage, $"'{url}' is not a supernode URL such as http://127.0.0.1:5000");
            }
        }

        return urls.Count > 0 ? urls : throw new CliException(ExitCodes.Usage, "no supernode known: pass --supernode URL (or run 'hybrid peer run --supernode URL' once)");
    }

    public SupernodeCaller Caller()
    {
        var caller = new SupernodeCaller(Supernodes());
        // Supernodes are trusted for availability only: say so when one was caught answering falsely.
        caller.ForgedAnswerReceived += (_, e) => Console.Error.WriteLine($"warning: {e.SupernodeUrl} answered with something that does not verify ({e.Message}); asked another supernode");
        return caller;
    }

    /// <summary>The identity's work stamp, kept in the home (asked of identities new to a network).</summary>
    public WorkStampStore WorkStamps(Hybrid.Protocol.Identity.PeerIdentity identity) => new(identity, Path.Combine(Home.Path, "work.stamp"));

    /// <summary>
    /// Runs <paramref name="call"/> against this home's daemon. No daemon (or a dead one) is one clear
    /// line, not a transport error.
    /// </summary>
    public async Task<T> ControlAsync<T>(Func<Control.ControlClient, Task<T>> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        if (!ControlChannel.Exists(Home.Path))
        {
            throw new CliException(ExitCodes.Unreachable, $"no daemon is running for {Home.Path}: start 'hybrid peer run' first");
        }

        using var channel = ControlChannel.Open(Home.Path);
        try
        {
            return await call(ControlChannel.Client(channel));
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && ex.Status.DebugException is HttpRequestException or System.Net.Sockets.SocketException)
        {
            throw new CliException(ExitCodes.Unreachable, $"the daemon for {Home.Path} is not answering: start 'hybrid peer run' again");
        }
    }

    /// <summary>Prints <paramref name="value"/> as JSON with --json, else runs <paramref name="human"/>.</summary>
    public void Write(object value, Action human)
    {
        if (JsonOutput)
        {
            Console.WriteLine(JsonSerializer.Serialize(value, Json));
        }
        else
        {
            human();
        }
    }

    /// <summary>Runs a command body, turning every failure into one line on stderr and its exit code.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (CliException ex)
        {
            return Fail(ex.ExitCode, ex.Message);
        }
        catch (RpcException ex)
        {
            var code = ex.StatusCode switch
            {
                StatusCode.NotFound => ExitCodes.NotFound,
                StatusCode.Unavailable or StatusCode.DeadlineExceeded => ExitCodes.Unreachable,
                _ => ExitCodes.Refused,
            };
            var detail = ex.StatusCode is StatusCode.Unavailable && (string.IsNullOrEmpty(ex.Status.Detail) || ex.Status.DebugException is not null)
                ? "no supernode could be reached"
                : ex.Status.Detail;
            return Fail(code, $"{detail} ({ex.StatusCode})");
        }
        catch (FileNotFoundException ex)
        {
            return Fail(ExitCodes.Usage, ex.Message);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException)
        {
            return Fail(ExitCodes.Usage, ex.Message);
        }
    }

    private static int Fail(int code, string message)
    {
        Console.Error.WriteLine($"hybrid: {message}");
        return code;
    }
}
