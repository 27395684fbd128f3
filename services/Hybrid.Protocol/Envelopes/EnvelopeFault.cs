namespace Hybrid.Protocol.Envelopes;

/// <summary>Why a signed envelope was refused.</summary>
public enum EnvelopeFault
{
    /// <summary>The bytes are not an envelope, or a required part is missing or too large.</summary>
    Malformed,

    /// <summary>The payload is larger than its kind allows.</summary>
    TooLarge,

    /// <summary>The envelope is of another kind than the one expected here.</summary>
    WrongKind,

    /// <summary>The signature does not verify against the enclosed key: forged or tampered.</summary>
    BadSignature,

    /// <summary>The signature verifies, but the signer is not the peer expected.</summary>
    WrongSigner,

    /// <summary>The envelope's expiry has passed.</summary>
    Expired,

    /// <summary>The envelope claims to be issued too far in the future.</summary>
    NotYetValid,

    /// <summary>The version is not newer than the one already stored (a replay or a stale update).</summary>
    Replayed,
}

/// <summary>Thrown when a signed envelope is refused; <see cref="Fault"/> says why.</summary>
public sealed class EnvelopeRejectedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EnvelopeRejectedException(EnvelopeFault fault, string message)
        : base(message) => Fault = fault;

    /// <summary>Creates the exception (for serializers).</summary>
    public EnvelopeRejectedException()
        : this(EnvelopeFault.Malformed, "malformed envelope")
    {
    }

    /// <summary>Creates the exception (for serializers).</summary>
    public EnvelopeRejectedException(string message)
        : this(EnvelopeFault.Malformed, message)
    {
    }

    /// <summary>Creates the exception (for serializers).</summary>
    public EnvelopeRejectedException(string message, Exception innerException)
        : base(message, innerException) => Fault = EnvelopeFault.Malformed;

    /// <summary>Why the envelope was refused.</summary>
    public EnvelopeFault Fault { get; }
}
