using Microsoft.Extensions.Hosting;

namespace Hybrid.Client.Connectivity;

/// <summary>Opens the session with the supernode network when the daemon starts (it then keeps itself open, failing over as needed) and closes it on stop.</summary>
public sealed class SupernodeSession(SupernodeConnection connection) : IHostedService
{
    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        connection.Start();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => connection.DisposeAsync().AsTask();
}
