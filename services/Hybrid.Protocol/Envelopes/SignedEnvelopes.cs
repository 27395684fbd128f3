using Google.Protobuf;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Envelopes;

/// <summary>An envelope whose signature, kind and validity period were checked.</summary>
/// <param name="Envelope">The envelope as received; store its exact bytes.</param>
/// <param name="Payload">The signed payload.</param>
/// <param name="Signer">The peer that signed it.</param>
public sealed record VerifiedEnvelope(SignedEnvelope Envelope, EnvelopePayload Payload, PeerId Signer)
{
    /// <summary>The version the signer gave this envelope.</summary>
    public ulong Version => Payload.Version;

    /// <summary>Parses the body as <typeparamref name="T"/>.</summary>
    /// <exception cref="EnvelopeRejectedException">The body is not a <typeparamref name="T"/>.</exception>
    /// <exception cref="EnvelopeRejectedException">
    /// The body is not a <typeparamref name="T"/>, or carries fields this version does not know or a
    /// non-canonical encoding: only what is understood is signed, stored and served.
    /// </exception>
    public T Body<T>(MessageParser<T> parser)
        where T : IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(parser);
        T body;
        try
        {
            body = parser.WithDiscardUnknownFields(true).ParseFrom(Payload.Body);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"{Payload.Kind} body does not parse: {ex.Message}");
        }

        if (body.CalculateSize() != Payload.Body.Length)
        {
            throw new EnvelopeRejectedException(EnvelopeFault.Malformed, $"{Payload.Kind} body carries fields this supernode does not know, or is not canonically encoded; sign only the fields of {typeof(T).Name}");
        }

        return body;
    }
}

/// <summary>Makes and checks signed envelopes.</summary>
public static class SignedEnvelopes
{
    /// <summary>The largest payload accepted of any kind, in bytes.</summary>
    public const int MaxPayloadBytes = 64 * 1024;

    /// <summary>The latest time an envelope may name: the end of year 9999, as far as dates go.</summary>
    public static readonly long MaxTimeMs = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    // Each kind's own ceiling, well above what its rules allow, so one record can never fill a page.
    private static readonly Dictionary<string, int> KindLimits = new(StringComparer.Ordinal)
    {
        [EnvelopeKinds.Profile] = 4 * 1024,
        [EnvelopeKinds.SessionProof] = 4 * 1024,
        [EnvelopeKinds.Listing] = 40 * 1024,
        [EnvelopeKinds.Withdrawal] = 512,
        [EnvelopeKinds.Chat] = 16 * 1024,
        [EnvelopeKinds.OrderOffer] = 4 * 1024,
        [EnvelopeKinds.OrderAcceptance] = 1024,
        [EnvelopeKinds.OrderCompletion] = 1024,
        [EnvelopeKinds.RelayRequest] = 512,
        [EnvelopeKinds.Review] = 16 * 1024,
        [EnvelopeKinds.ReviewReply] = 8 * 1024,
        // A nonce, and up to 16 introduced clusters (an id and a URL of at most 256 characters each).
        [EnvelopeKinds.FederationHello] = 8 * 1024,
    };

    /// <summary>
    /// The time an envelope says it was signed, within the range dates go; the epoch when its payload
    /// does not parse (verifying it then says why). For checking an envelope as of when it was signed.
    /// </summary>
    public static DateTimeOffset IssuedAt(SignedEnvelope? envelope)
    {
        try
        {
            var issued = envelope is null ? 0 : EnvelopePayload.Parser.ParseFrom(envelope.Payload).IssuedAtMs;
            return DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(issued, 0, MaxTimeMs));
        }
        catch (InvalidProtocolBufferException)
        {
            return DateTimeOffset.UnixEpoch;
        }
    }

    /// <summary>The largest payload accepted for envelopes of <paramref name="kind"/>, in bytes.</summary>
    public static int MaxPayloadBytesFor(string kind) => KindLimits.GetValueOrDefault(kind, MaxPayloadBytes);

    /// <summary>How far a signer's clock may run ahead of the verifier's.</summary>
    public static readonly TimeSpan AllowedClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>Signs <paramref name="body"/> as an envelope of <paramref name="kind"/>.</summary>
    public static SignedEnvelope Sign(PeerIdentity signer, string kind, ulong version, IMessage body, DateTimeOffset issuedAt, DateTimeOffset expiresAt)
    {
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentNullException.ThrowIfNull(body);
        var payload = new EnvelopePayload
        {
            Kind = kind,
            Version = version,
            IssuedAtMs = issuedAt.ToUnixTimeMilliseconds(),
            ExpiresAtMs = expiresAt.ToUnixTimeMilliseconds(),
            Body = body.ToByteString(),
        }.ToByteArray();
        return new SignedEnvelope
        {
            Payload = ByteString.CopyFrom(payload),
            SignerPublicKey = ByteString.CopyFrom(signer.PublicKey),
            Signature = ByteString.CopyFrom(signer.Sign(payload)),
        };
    }

    /// <summary>
    /// Checks an envelope: well formed, of <paramref name="expectedKind"/>, signed by the enclosed key
    /// (and by <paramref name="expectedSigner"/> when given), issued no later than now plus the allowed
    /// skew, and not expired.
    /// </summary>
    /// <exception cref="EnvelopeRejectedException">Any check fails; the message says which.</exception>
    public static VerifiedEnvelope Verify(SignedEnvelope? envelope, string expectedKind, DateTimeOffset now, PeerId? expectedSigner = null)
    {
        if (envelope is null || envelope.Payload.IsEmpty)
        {
            throw Reject(EnvelopeFault.Malformed, $"{expectedKind} envelope is missing or empty");
        }

        var limit = MaxPayloadBytesFor(expectedKind);
        if (envelope.Payload.Length > limit)
        {
            throw Reject(EnvelopeFault.TooLarge, $"{expectedKind} envelope is {envelope.Payload.Length} bytes; the limit for this kind is {limit}");
        }

        if (envelope.SignerPublicKey.IsEmpty || envelope.Signature.IsEmpty)
        {
            throw Reject(EnvelopeFault.Malformed, $"{expectedKind} envelope has no signer key or no signature");
        }

        // Bytes outside the signature (unknown fields beside payload, key and signature) would be stored
        // and served as if the signer had sent them.
        if (envelope.CalculateSize() != Canonical(envelope).CalculateSize())
        {
            throw Reject(EnvelopeFault.Malformed, $"{expectedKind} envelope carries fields beside payload, signer key and signature; send only those");
        }

        switch (PublicKeys.Verify(envelope.SignerPublicKey.Span, envelope.Payload.Span, envelope.Signature.Span))
        {
            case SignatureCheck.NotAKey:
                throw Reject(EnvelopeFault.Malformed, "signer key is not an ECDSA P-256 public key");
            case SignatureCheck.Invalid:
                throw Reject(EnvelopeFault.BadSignature, $"{expectedKind} signature does not verify: the envelope was forged or altered");
        }

        EnvelopePayload payload;
        try
        {
            payload = StrictPayload.ParseFrom(envelope.Payload);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Reject(EnvelopeFault.Malformed, $"envelope payload does not parse: {ex.Message}");
        }

        if (payload.CalculateSize() != envelope.Payload.Length)
        {
            throw Reject(EnvelopeFault.Malformed, $"{expectedKind} payload carries fields this version does not know, or is not canonically encoded");
        }

        if (payload.IssuedAtMs is < 0 || payload.IssuedAtMs > MaxTimeMs || payload.ExpiresAtMs is < 0 || payload.ExpiresAtMs > MaxTimeMs)
        {
            throw Reject(EnvelopeFault.Malformed, $"{expectedKind} times must be Unix milliseconds between 1970 and 9999 (issued {payload.IssuedAtMs}, expires {payload.ExpiresAtMs})");
        }

        if (payload.ExpiresAtMs <= payload.IssuedAtMs)
        {
            throw Reject(EnvelopeFault.Malformed, $"{expectedKind} expires before it is issued");
        }

        if (!string.Equals(payload.Kind, expectedKind, StringComparison.Ordinal))
        {
            throw Reject(EnvelopeFault.WrongKind, $"expected a {expectedKind} envelope, got '{payload.Kind}'");
        }

        var signer = PeerId.FromPublicKey(envelope.SignerPublicKey.Span);
        if (expectedSigner is { } expected && !expected.Equals(signer))
        {
            throw Reject(EnvelopeFault.WrongSigner, $"{expectedKind} is signed by {signer}, not by {expected}");
        }

        var nowMs = now.ToUnixTimeMilliseconds();
        if (payload.ExpiresAtMs <= nowMs)
        {
            throw Reject(EnvelopeFault.Expired, $"{expectedKind} expired at {DateTimeOffset.FromUnixTimeMilliseconds(payload.ExpiresAtMs):O}");
        }

        if (payload.IssuedAtMs > nowMs + (long)AllowedClockSkew.TotalMilliseconds)
        {
            throw Reject(EnvelopeFault.NotYetValid, $"{expectedKind} is issued in the future ({DateTimeOffset.FromUnixTimeMilliseconds(payload.IssuedAtMs):O}); check the signer's clock");
        }

        return new VerifiedEnvelope(envelope, payload, signer);
    }

    /// <summary>
    /// Refuses <paramref name="incoming"/> unless it is newer than <paramref name="storedVersion"/>.
    /// The same bytes again are not an error (<see langword="false"/>: nothing new to store).
    /// </summary>
    /// <returns><see langword="true"/> when the incoming envelope replaces the stored one.</returns>
    /// <exception cref="EnvelopeRejectedException">An older version, or another envelope with the same version.</exception>
    public static bool SupersedesStored(VerifiedEnvelope incoming, ulong? storedVersion, ReadOnlySpan<byte> storedPayload)
    {
        ArgumentNullException.ThrowIfNull(incoming);
        return SupersedesStored(incoming.Payload.Kind, incoming.Version, incoming.Envelope.Payload.Span, storedVersion, storedPayload);
    }

    /// <summary>The rule of <see cref="SupersedesStored(VerifiedEnvelope, ulong?, ReadOnlySpan{byte})"/>, on stored values.</summary>
    public static bool SupersedesStored(string kind, ulong incomingVersion, ReadOnlySpan<byte> incomingPayload, ulong? storedVersion, ReadOnlySpan<byte> storedPayload)
    {
        if (storedVersion is not { } stored || incomingVersion > stored)
        {
            return true;
        }

        if (incomingVersion == stored && incomingPayload.SequenceEqual(storedPayload))
        {
            return false;
        }

        throw Reject(EnvelopeFault.Replayed, $"{kind} version {incomingVersion} is not newer than the stored version {stored}");
    }

    /// <summary>The envelope with only its three signed-over parts, as a supernode stores it.</summary>
    public static SignedEnvelope Canonical(SignedEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        return new SignedEnvelope { Payload = envelope.Payload, SignerPublicKey = envelope.SignerPublicKey, Signature = envelope.Signature };
    }

    private static readonly MessageParser<EnvelopePayload> StrictPayload = EnvelopePayload.Parser.WithDiscardUnknownFields(true);

    private static EnvelopeRejectedException Reject(EnvelopeFault fault, string message) => new(fault, message);
}
