using System.Net;
using Hybrid.Supernode.Federation;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A peer cluster learned from another is dialed only at public unicast addresses: an introduction
/// from a stranger must not make this cluster call into its own network (or its cloud's metadata
/// service).
/// </summary>
public sealed class FederationAddressPolicyTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("172.16.0.1")]
    [InlineData("172.31.255.254")]
    [InlineData("192.168.1.1")]
    [InlineData("169.254.169.254")]
    [InlineData("100.64.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("224.0.0.1")]
    [InlineData("255.255.255.255")]
    [InlineData("::1")]
    [InlineData("::")]
    [InlineData("fe80::1")]
    [InlineData("fd00::1")]
    [InlineData("fc12::1")]
    [InlineData("ff02::1")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("::ffff:127.0.0.1")]
    public void AnAddressInsideANetworkIsNotPublic(string address) =>
        Assert.False(FederationPeers.IsPublic(IPAddress.Parse(address)));

    [Theory]
    [InlineData("203.0.113.7")]
    [InlineData("198.51.100.20")]
    [InlineData("172.32.0.1")]
    [InlineData("100.128.0.1")]
    [InlineData("8.8.8.8")]
    [InlineData("2001:db8::1")]
    [InlineData("::ffff:198.51.100.20")]
    public void APublicUnicastAddressIsPublic(string address) =>
        Assert.True(FederationPeers.IsPublic(IPAddress.Parse(address)));
}
