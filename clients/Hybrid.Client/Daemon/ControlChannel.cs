using System.Net.Sockets;
using Grpc.Net.Client;
using Hybrid.Protocol.Control;

namespace Hybrid.Client.Daemon;

/// <summary>Connects to the daemon of a home directory over its control socket.</summary>
public static class ControlChannel
{
    /// <summary>Whether a daemon's control socket exists in <paramref name="homePath"/>.</summary>
    public static bool Exists(string homePath) => File.Exists(Path.Combine(homePath, PeerDaemon.ControlSocketName));

    /// <summary>A channel to the daemon of <paramref name="homePath"/> (nothing is sent until the first call).</summary>
    public static GrpcChannel Open(string homePath)
    {
        var endpoint = new UnixDomainSocketEndPoint(Path.Combine(homePath, PeerDaemon.ControlSocketName));
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(endpoint, cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            },
            DisposeHttpClient = true,
        });
    }

    /// <summary>A control client over <paramref name="channel"/>.</summary>
    public static Control.ControlClient Client(GrpcChannel channel) => new(channel);
}
