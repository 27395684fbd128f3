using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Cluster;
using Hybrid.Supernode.Hosting;

SupernodeOptions options;
// appsettings.json ships beside the binary: read it from there whatever the working directory is.
// Settings are read once at start, so configuration files are not watched (a watcher is one of a
// Linux user's 128 inotify instances; many supernodes on one box would run out).
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false", .. args], ContentRootPath = AppContext.BaseDirectory });
try
{
    options = SupernodeConfiguration.Load(builder.Configuration);
}
catch (SupernodeConfigurationException ex)
{
    await Console.Error.WriteLineAsync($"hybrid-supernode: configuration error: {ex.Message}");
    return 2;
}

builder.AddSupernodeListeners(options);
builder.AddSupernodeCluster(options);
builder.AddSupernodeApi(options);

var app = builder.Build();
app.MapSupernodeEndpoints();
await app.RunAsync();
// Zero, unless the supernode stopped itself for a reason it set (a fence after a long freeze).
return Environment.ExitCode;

/// <summary>Entry point, public so tests can name the assembly.</summary>
public partial class Program;
