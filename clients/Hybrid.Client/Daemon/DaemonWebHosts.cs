using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Daemon;

/// <summary>What the daemon's two small web hosts (peer host, control socket) share.</summary>
internal static class DaemonWebHosts
{
    /// <summary>
    /// A slim builder that reads no configuration files, so it watches none: each file watcher is an
    /// inotify instance, and a user has only 128 of those on a default Linux.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(string home, IServiceProvider root)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = home,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(root.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>());
        return builder;
    }

    /// <summary>Makes the daemon's singleton <typeparamref name="T"/> (from <paramref name="root"/>) available to a web host's services.</summary>
    public static void Share<T>(this IServiceCollection services, IServiceProvider root)
        where T : class => services.AddSingleton(_ => root.GetRequiredService<T>());
}
