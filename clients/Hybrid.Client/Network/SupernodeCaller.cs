using Grpc.Core;
using Grpc.Net.Client;

namespace Hybrid.Client.Network;

/// <summary>
/// One-off calls to the supernode network without a session: tries each known supernode in turn
/// and moves on when one is unavailable. For commands that only need the index (search, lookup,
/// publishing signed objects).
/// </summary>
public sealed class SupernodeCaller : IDisposable
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<string> _urls;
    private readonly TimeSpan _timeout;

    /// <summary>Creates a caller over <paramref name="urls"/>, each call bounded by <paramref name="timeout"/>.</summary>
    public SupernodeCaller(IReadOnlyList<string> urls, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(urls);
        if (urls.Count == 0)
        {
            throw new ArgumentException("no supernode URL given", nameof(urls));
        }

        _urls = urls;
        _timeout = timeout ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>
    /// Runs <paramref name="call"/> against the first supernode that answers. Only transport
    /// failures move on to the next; a supernode's answer (even a refusal) is final.
    /// </summary>
    public Task<T> CallAsync<T>(Func<Protocol.Api.SupernodeClients, CallOptions, Task<T>> call, CancellationToken cancellationToken = default) =>
        FirstAnsweringAsync(_urls, Channel, call, _timeout, cancellationToken);

    /// <summary>The rule behind <see cref="CallAsync{T}"/>, over any list of supernodes and channels.</summary>
    internal static async Task<T> FirstAnsweringAsync<T>(IEnumerable<string> urls, Func<string, GrpcChannel> channel, Func<Protocol.Api.SupernodeClients, CallOptions, Task<T>> call, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        RpcException? last = null;
        foreach (var url in urls)
        {
            try
            {
                var options = new CallOptions(deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken);
                return await call(new Protocol.Api.SupernodeClients(channel(url)), options);
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                last = ex;
            }
        }

        throw last ?? new RpcException(new Status(StatusCode.Unavailable, "no supernode is known"));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
    }

    private GrpcChannel Channel(string url)
    {
        if (!_channels.TryGetValue(url, out var channel))
        {
            channel = GrpcChannel.ForAddress(url);
            _channels[url] = channel;
        }

        return channel;
    }
}
