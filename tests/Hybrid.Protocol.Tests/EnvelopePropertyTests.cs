using CsCheck;
using Google.Protobuf;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;

namespace Hybrid.Protocol.Tests;

/// <summary>
/// Properties of the envelope and listing rules over generated inputs: any input is either accepted
/// or refused with a reason (never another exception), and what is accepted is exactly what was signed.
/// </summary>
public sealed class EnvelopePropertyTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 29, 12, 0, 0, TimeSpan.Zero);
    private readonly PeerIdentity _seller = PeerIdentity.Generate();

    public void Dispose() => _seller.Dispose();

    // Times across the whole range of long, with the interesting ones made likely.
    private static readonly Gen<long> AnyTime = Gen.OneOf<long>(
        Gen.Long,
        Gen.OneOf<long>(long.MinValue, long.MaxValue, -1L, 0L, SignedEnvelopes.MaxTimeMs, SignedEnvelopes.MaxTimeMs + 1),
        Gen.Long[Now.ToUnixTimeMilliseconds() - 1_000_000_000, Now.ToUnixTimeMilliseconds() + 1_000_000_000]);

    /// <summary>Extra fields a hostile sender could add: field numbers no message uses, any wire type.</summary>
    private static readonly Gen<byte[]> UnknownFields = Gen.Select(Gen.Int[100, 100_000], Gen.Int[0, 2], Gen.Byte.Array[0, 64])
        .Select((field, wire, data) =>
        {
            using var buffer = new MemoryStream();
            var output = new CodedOutputStream(buffer);
            switch (wire)
            {
                case 0:
                    output.WriteTag(field, WireFormat.WireType.Varint);
                    output.WriteUInt64((ulong)data.Length * 7919);
                    break;
                case 1:
                    output.WriteTag(field, WireFormat.WireType.Fixed64);
                    output.WriteFixed64((ulong)data.Length);
                    break;
                default:
                    output.WriteTag(field, WireFormat.WireType.LengthDelimited);
                    output.WriteBytes(ByteString.CopyFrom(data));
                    break;
            }

            output.Flush();
            return buffer.ToArray();
        });

    private SignedEnvelope SignRaw(byte[] payload) => new()
    {
        Payload = ByteString.CopyFrom(payload),
        SignerPublicKey = ByteString.CopyFrom(_seller.PublicKey),
        Signature = ByteString.CopyFrom(_seller.Sign(payload)),
    };

    private static EnvelopePayload Payload(IMessage body, long issued, long expires, ulong version = 1) => new()
    {
        Kind = EnvelopeKinds.Profile,
        Version = version,
        IssuedAtMs = issued,
        ExpiresAtMs = expires,
        Body = body.ToByteString(),
    };

    [Fact]
    public void AnyTimesAreAcceptedOrRefusedWithAReasonNeverThrownOtherwise()
    {
        Gen.Select(AnyTime, AnyTime, Gen.ULong).Sample((issued, expires, version) =>
        {
            var envelope = SignRaw(Payload(new PeerProfile { DisplayName = "Erin" }, issued, expires, version).ToByteArray());
            try
            {
                var verified = SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, Now);
                Assert.InRange(verified.Payload.IssuedAtMs, 0, Now.ToUnixTimeMilliseconds() + (long)SignedEnvelopes.AllowedClockSkew.TotalMilliseconds);
                Assert.InRange(verified.Payload.ExpiresAtMs, Now.ToUnixTimeMilliseconds() + 1, SignedEnvelopes.MaxTimeMs);
            }
            catch (EnvelopeRejectedException ex)
            {
                Assert.False(string.IsNullOrWhiteSpace(ex.Message));
            }
        }, iter: 300, seed: "0N0XIzNsQ0O2");
    }

    [Fact]
    public void UnknownFieldsBesideTheSignedPartsAreRefused()
    {
        UnknownFields.Sample(extra =>
        {
            var envelope = SignedEnvelopes.Sign(_seller, EnvelopeKinds.Profile, 1, new PeerProfile { DisplayName = "Erin" }, Now, Now.AddDays(1));
            var smuggled = SignedEnvelope.Parser.ParseFrom([.. envelope.ToByteArray(), .. extra]);

            var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(smuggled, EnvelopeKinds.Profile, Now));

            Assert.Equal(EnvelopeFault.Malformed, ex.Fault);
        }, iter: 100, seed: "0N0XIzNsQ0O3");
    }

    [Fact]
    public void UnknownFieldsInsideTheSignedPayloadOrBodyAreRefusedEvenWhenSigned()
    {
        Gen.Select(UnknownFields, Gen.Bool).Sample((extra, inBody) =>
        {
            var body = new PeerProfile { DisplayName = "Erin" }.ToByteArray();
            var payload = Payload(new PeerProfile { DisplayName = "Erin" }, Now.ToUnixTimeMilliseconds(), Now.AddDays(1).ToUnixTimeMilliseconds());
            if (inBody)
            {
                payload.Body = ByteString.CopyFrom([.. body, .. extra]);
            }

            var payloadBytes = inBody ? payload.ToByteArray() : [.. payload.ToByteArray(), .. extra];
            var envelope = SignRaw(payloadBytes);

            var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, Now).Body(PeerProfile.Parser));

            Assert.Equal(EnvelopeFault.Malformed, ex.Fault);
        }, iter: 100, seed: "0N0XIzNsQ0O4");
    }

    [Fact]
    public void WhatVerifiesIsByteForByteWhatWasSigned()
    {
        Gen.Select(Gen.String[Gen.Char.AlphaNumeric, 1, 64], Gen.ULong[1, ulong.MaxValue]).Sample((name, version) =>
        {
            var envelope = SignedEnvelopes.Sign(_seller, EnvelopeKinds.Profile, version, new PeerProfile { DisplayName = name }, Now, Now.AddDays(1));
            var received = SignedEnvelope.Parser.ParseFrom(envelope.ToByteArray());

            var verified = SignedEnvelopes.Verify(received, EnvelopeKinds.Profile, Now);

            Assert.Equal(envelope.ToByteArray(), SignedEnvelopes.Canonical(verified.Envelope).ToByteArray());
            Assert.Equal(name, verified.Body(PeerProfile.Parser).DisplayName);
        }, iter: 50, seed: "0N0XIzNsQ0O5");
    }

    [Fact]
    public void EachKindHasItsOwnSizeCeiling()
    {
        var big = new PeerProfile { DisplayName = "Erin", About = new string('x', SignedEnvelopes.MaxPayloadBytesFor(EnvelopeKinds.Profile)) };
        var envelope = SignedEnvelopes.Sign(_seller, EnvelopeKinds.Profile, 1, big, Now, Now.AddDays(1));

        var ex = Assert.Throws<EnvelopeRejectedException>(() => SignedEnvelopes.Verify(envelope, EnvelopeKinds.Profile, Now));

        Assert.Equal(EnvelopeFault.TooLarge, ex.Fault);
        Assert.Contains("limit for this kind", ex.Message, StringComparison.Ordinal);
    }

    private static readonly Gen<Listing> AnyListing = Gen.Select(
            Gen.String[Gen.Char, 0, 200],
            Gen.Long,
            Gen.Int,
            Gen.UInt,
            Gen.Long,
            Gen.OneOf<string>("EUR", "USD", "", "eur", "XXXX"),
            Gen.OneOf<string>("books", "", "nope", "other"))
        .Select((text, units, nanos, quantity, created, currency, category) => new Listing
        {
            ListingId = ListingRules.NewListingId(),
            Title = text,
            Description = text,
            Price = new Money { Currency = currency, Units = units, Nanos = nanos },
            Category = category,
            Quantity = quantity,
            CreatedMs = created,
            Location = new Location { Country = text.Length > 2 ? text[..2] : text, Geohash = text.Length > 12 ? text[..12] : text },
        });

    [Fact]
    public void AnyListingIsJudgedWithoutThrowingAndACreationTimeMustBeInThePast()
    {
        Gen.Select(AnyListing, AnyTime).Sample((listing, expires) =>
        {
            var expiresAt = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(expires, 0, SignedEnvelopes.MaxTimeMs));
            var problem = ListingRules.Check(listing, expiresAt, Now);
            if (problem is null)
            {
                Assert.InRange(listing.CreatedMs, 0, Now.Add(SignedEnvelopes.AllowedClockSkew).ToUnixTimeMilliseconds());
                Assert.InRange(listing.Price.Units, 0, ListingRules.MaxPriceUnits);
            }
        }, iter: 500, seed: "0N0XIzNsQ0O6");
    }
}
