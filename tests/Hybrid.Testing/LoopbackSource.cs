using System.Net;
using System.Net.Sockets;
using Grpc.Net.Client;

namespace Hybrid.Testing;

/// <summary>gRPC channels whose connections come from a chosen loopback address (127.0.0.2, …), as distinct clients would.</summary>
public static class LoopbackSource
{
    public static GrpcChannel Channel(string url, string sourceAddress, int maxMessageBytes = 4 * 1024 * 1024)
    {
        var source = IPAddress.Parse(sourceAddress);
        return GrpcChannel.ForAddress(url, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = maxMessageBytes,
            MaxSendMessageSize = maxMessageBytes,
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (context, cancellationToken) =>
                {
                    var socket = new Socket(source.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        socket.Bind(new IPEndPoint(source, 0));
                        await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
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
}
