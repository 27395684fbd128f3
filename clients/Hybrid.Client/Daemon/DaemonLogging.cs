using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Extensions.Logging;

namespace Hybrid.Client.Daemon;

/// <summary>
/// The daemon's log: a rotated file in the home (what <c>hybrid status</c> points to), plus whatever
/// logging the caller passed (the console of <c>hybrid peer run</c>).
/// </summary>
public static class DaemonLogging
{
    /// <summary>The log file's path inside the home; rotated files get a number before the extension.</summary>
    public const string RelativePath = "logs/daemon.log";

    /// <summary>A file is rotated at this size.</summary>
    public const long FileSizeLimit = 5 * 1024 * 1024;

    /// <summary>Files kept, the current one included.</summary>
    public const int FilesKept = 4;

    /// <summary>Adds the rotated file under <paramref name="home"/> and forwards to <paramref name="caller"/>.</summary>
    public static ILoggingBuilder AddDaemonLogging(this ILoggingBuilder logging, string home, ILoggerFactory caller)
    {
        ArgumentNullException.ThrowIfNull(logging);
        var file = new LoggerConfiguration()
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft", Serilog.Events.LogEventLevel.Warning)
            .MinimumLevel.Override("Grpc", Serilog.Events.LogEventLevel.Warning)
            .WriteTo.File(
                Path.Combine(home, RelativePath),
                outputTemplate: "{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} [{Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}",
                fileSizeLimitBytes: FileSizeLimit,
                rollOnFileSizeLimit: true,
                retainedFileCountLimit: FilesKept,
                flushToDiskInterval: TimeSpan.FromSeconds(1))
            .CreateLogger();
        logging.ClearProviders();
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Grpc", LogLevel.Warning);
        logging.AddProvider(new SerilogLoggerProvider(file, dispose: true));
        logging.AddProvider(new Forwarding(caller));
        return logging;
    }

    /// <summary>Hands every logger to another factory (owned by the caller, so not disposed here).</summary>
    private sealed class Forwarding(ILoggerFactory factory) : ILoggerProvider
    {
        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }
}
