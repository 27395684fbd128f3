using System.Net;
using System.Net.Sockets;

namespace Hybrid.Testing;

public static class Ports
{
    private static readonly object Gate = new();
    private static readonly HashSet<int> Given = [];
    private static readonly (int Low, int High) Range = PickRange();

    /// <summary>
    /// Ports never handed out: an embedded supernode's own silo and gateway ports (the defaults of
    /// <c>Supernode:SiloPort</c> and <c>Supernode:GatewayPort</c>). Handed out as a supernode's API
    /// port, one of them made that supernode's Kestrel fail to bind beside its own silo.
    /// </summary>
    public static readonly IReadOnlySet<int> Reserved = new HashSet<int> { 11111, 30000 };

    /// <summary>
    /// A loopback port that was free a moment ago. It is picked below the kernel's ephemeral range, so
    /// an outgoing connection (of which a busy test makes many) never takes it as its source port
    /// between the pick and the bind, nor while a killed process that held it is being restarted;
    /// a port is handed out once per test process.
    /// </summary>
    public static int Free()
    {
        lock (Gate)
        {
            for (var attempt = 0; attempt < 200; attempt++)
            {
                var port = Random.Shared.Next(Range.Low, Range.High);
                if (Given.Contains(port) || Reserved.Contains(port) || !Bindable(port))
                {
                    continue;
                }

                Given.Add(port);
                return port;
            }
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool Bindable(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Ports 10000 up to the start of the ephemeral range (Linux: 32768 unless changed).</summary>
    private static (int, int) PickRange()
    {
        var ephemeralLow = 32768;
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            ephemeralLow = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            // Not Linux, or not readable: keep the usual default.
        }

        return ephemeralLow > 12000 ? (10000, ephemeralLow) : (1024, 10000);
    }
}
