using System.Collections.Immutable;

namespace Hybrid.Index.Directory;

/// <summary>A peer's signed profile, already verified by the supernode that received it.</summary>
/// <param name="Envelope">The exact bytes of the <c>SignedEnvelope</c>, kept so anyone can verify it again.</param>
/// <param name="Payload">The exact signed payload bytes (to tell a replay from a repeat).</param>
/// <param name="Version">The envelope's version.</param>
[GenerateSerializer, Immutable, Alias("hybrid.SignedProfile")]
public sealed record SignedProfile(
    [property: Id(0)] byte[] Envelope,
    [property: Id(1)] byte[] Payload,
    [property: Id(2)] ulong Version);

/// <summary>
/// What a supernode tells a peer's grain when the peer authenticates a session. <paramref name="Endpoints"/>
/// are what the peer announced: candidates until a dial-back verifies them. <paramref name="Holder"/> is
/// the silo of the supernode holding the session: the presence lasts while that silo lives (and the
/// lease runs), so a crashed supernode's peers show offline once membership declares it dead.
/// </summary>
[GenerateSerializer, Immutable, Alias("hybrid.SessionClaim")]
public sealed record SessionClaim(
    [property: Id(0)] Guid SessionId,
    [property: Id(1)] byte[] PublicKey,
    [property: Id(2)] SignedProfile? Profile,
    [property: Id(3)] ImmutableArray<string> Endpoints,
    [property: Id(4)] string SupernodeUrl,
    [property: Id(5)] TimeSpan Lease,
    [property: Id(6)] bool MayCreate = true,
    [property: Id(7)] SiloAddress? Holder = null);

/// <summary>How an index write went.</summary>
[GenerateSerializer, Alias("hybrid.IndexOutcome")]
public enum IndexOutcome
{
    /// <summary>Applied.</summary>
    Applied = 0,

    /// <summary>Nothing new: the same signed bytes were already stored.</summary>
    Unchanged = 1,

    /// <summary>Refused: not newer than what is stored.</summary>
    Replayed = 2,

    /// <summary>Refused: the key does not belong to this peer.</summary>
    KeyMismatch = 3,

    /// <summary>Refused: the session is not (or no longer) the peer's current one.</summary>
    NotCurrentSession = 4,

    /// <summary>Refused: the identity is new to the network and was not admitted (no work stamp, or over a budget).</summary>
    NewIdentity = 5,
}

/// <summary>The outcome of an index write, with a reason a person can read.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.IndexResult")]
public sealed record IndexResult([property: Id(0)] IndexOutcome Outcome, [property: Id(1)] string Message)
{
    /// <summary>Whether the write took effect or changed nothing.</summary>
    public bool Succeeded => Outcome is IndexOutcome.Applied or IndexOutcome.Unchanged;
}

/// <summary>
/// Everything the index knows of a peer at one moment. <paramref name="Endpoints"/> are verified by a
/// dial-back (offered to others as reachable); <paramref name="Candidates"/> are announced or observed
/// addresses not verified (worth a short try, and what a hole punch aims at).
/// </summary>
[GenerateSerializer, Immutable, Alias("hybrid.PeerSnapshot")]
public sealed record PeerSnapshot(
    [property: Id(0)] byte[] PublicKey,
    [property: Id(1)] byte[]? ProfileEnvelope,
    [property: Id(2)] bool Online,
    [property: Id(3)] ImmutableArray<string> Endpoints,
    [property: Id(4)] DateTimeOffset LastSeen,
    [property: Id(5)] string? SupernodeUrl,
    [property: Id(6)] ImmutableArray<string> Candidates);
