using System.Net;
using System.Net.Sockets;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// Sockets that share the peer host's port. A session opened from that port makes the supernode
/// observe the NAT mapping other peers must aim at, and a hole punch connects from it so the
/// mapping is the one both sides know (endpoint-independent NATs keep one mapping per port).
/// </summary>
public static class PortReuse
{
    /// <summary>Lets several sockets (the listener and outgoing connections) bind one address and port.</summary>
    public static void Enable(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        if (OperatingSystem.IsLinux())
        {
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, BitConverter.GetBytes(1));
        }
        else if (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())
        {
            socket.SetRawSocketOption(0xffff /* SOL_SOCKET */, 0x200 /* SO_REUSEPORT */, BitConverter.GetBytes(1));
        }
    }

    /// <summary>The peer host's listening socket: bound with port reuse so connections can leave from its port.</summary>
    public static Socket BindListener(EndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint is not IPEndPoint ip)
        {
            return Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        }

        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (ip.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            Enable(socket);
            socket.Bind(ip);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Connects to <paramref name="target"/> from <paramref name="local"/> (the peer host's address and
    /// port); null when that is not possible (the port is taken for this destination, another address
    /// family), so the caller connects from an ephemeral port instead.
    /// </summary>
    public static async Task<Socket?> TryConnectFromAsync(IPEndPoint local, EndPoint target, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(local);
        var family = target is IPEndPoint ip ? ip.AddressFamily : local.AddressFamily;
        if (family != local.AddressFamily)
        {
            return null;
        }

        var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            Enable(socket);
            socket.Bind(local);
            await socket.ConnectAsync(target, cancellationToken);
            return socket;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported or SocketError.InvalidArgument)
        {
            socket.Dispose();
            return null;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
