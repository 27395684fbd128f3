namespace Hybrid.Protocol.Network;

/// <summary>
/// The relay byte port's wire format, shared by the supernode that serves it and the peers that
/// connect: a peer sends <see cref="Version"/> then its one-time token of <see cref="TokenBytes"/>
/// bytes; the supernode answers <see cref="Spliced"/> once both peers of the link are in, and from
/// then on every byte is the other peer's.
/// </summary>
public static class RelaySplice
{
    /// <summary>The first byte a peer sends.</summary>
    public const byte Version = 1;

    /// <summary>The supernode's one-byte answer when the link is spliced.</summary>
    public const byte Spliced = 0x53;

    /// <summary>Bytes of a token.</summary>
    public const int TokenBytes = 16;
}
