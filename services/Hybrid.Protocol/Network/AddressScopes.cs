using System.Net;
using System.Net.Sockets;

namespace Hybrid.Protocol.Network;

/// <summary>How far an address reaches, narrowest first.</summary>
public enum AddressScope
{
    /// <summary>Never dialed: unspecified, multicast, broadcast, reserved, link-local.</summary>
    Never,

    /// <summary>This machine.</summary>
    Loopback,

    /// <summary>A private network (RFC 1918, carrier-grade NAT, unique local IPv6).</summary>
    Private,

    /// <summary>Anything else.</summary>
    Global,
}

/// <summary>
/// One classification of addresses for everything that decides whom to dial: a supernode's
/// dial-back and a peer's hole punch.
/// </summary>
public static class AddressScopes
{
    /// <summary>The scope of <paramref name="address"/> (IPv4-mapped IPv6 as its IPv4).</summary>
    public static AddressScope Of(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address))
        {
            return AddressScope.Loopback;
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return address.GetAddressBytes() switch
            {
                [0, ..] or [>= 224, ..] => AddressScope.Never,          // "this network", multicast, reserved, broadcast
                [169, 254, ..] => AddressScope.Never,                  // link-local
                [10, ..] or [192, 168, ..] => AddressScope.Private,
                [172, >= 16 and <= 31, ..] => AddressScope.Private,
                [100, >= 64 and <= 127, ..] => AddressScope.Private,   // carrier-grade NAT
                _ => AddressScope.Global,
            };
        }

        if (address.Equals(IPAddress.IPv6Any) || address.IsIPv6Multicast || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal)
        {
            return AddressScope.Never;
        }

        return address.IsIPv6UniqueLocal ? AddressScope.Private : AddressScope.Global;
    }
}
