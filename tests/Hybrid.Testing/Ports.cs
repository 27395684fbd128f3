using System.Net;
using System.Net.Sockets;

namespace Hybrid.Testing;

public static class Ports
{
    /// <summary>A loopback port that was free a moment ago (the OS hands out ports in sequence, so reuse is unlikely).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
