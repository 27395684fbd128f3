using System.Security.Cryptography;
using Google.Protobuf;
using Hybrid.Protocol.Content;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;

namespace Hybrid.Protocol.Tests;

public sealed class SealingAndContentTests : IDisposable
{
    private readonly PeerIdentity _recipient = PeerIdentity.Generate();
    private readonly PeerIdentity _other = PeerIdentity.Generate();

    public void Dispose()
    {
        _recipient.Dispose();
        _other.Dispose();
    }

    [Fact]
    public void OnlyTheRecipientOpensASealedItem()
    {
        var plaintext = "the parcel left today"u8.ToArray();

        var sealedItem = SealedBoxes.Seal(plaintext, _recipient.PublicKey);

        Assert.Equal(plaintext, SealedBoxes.Open(sealedItem, _recipient));
        Assert.True(sealedItem.Ciphertext.Span.IndexOf("parcel"u8) < 0);
        Assert.ThrowsAny<CryptographicException>(() => SealedBoxes.Open(sealedItem, _other));
    }

    [Fact]
    public void AnAlteredSealedItemDoesNotOpen()
    {
        var sealedItem = SealedBoxes.Seal("accept order 42"u8, _recipient.PublicKey);
        var bytes = sealedItem.Ciphertext.ToByteArray();
        bytes[0] ^= 1;
        sealedItem.Ciphertext = ByteString.CopyFrom(bytes);

        Assert.ThrowsAny<CryptographicException>(() => SealedBoxes.Open(sealedItem, _recipient));
    }

    [Fact]
    public void TwoSealsOfTheSameTextLookUnrelated()
    {
        var a = SealedBoxes.Seal("same"u8, _recipient.PublicKey);
        var b = SealedBoxes.Seal("same"u8, _recipient.PublicKey);

        Assert.NotEqual(a.Ciphertext, b.Ciphertext);
        Assert.NotEqual(a.EphemeralPublicKey, b.EphemeralPublicKey);
    }

    [Fact]
    public async Task AManifestNamesItsContentAndRefusesAnyOther()
    {
        var data = RandomNumberGenerator.GetBytes(ContentManifests.DefaultChunkSize * 2 + 1000);
        var manifest = await ContentManifests.BuildAsync(new MemoryStream(data));
        var id = ContentManifests.ContentId(manifest);

        Assert.Equal(3, manifest.ChunkHashes.Count);
        Assert.Equal((ulong)data.Length, manifest.Size);
        Assert.Equal(1000, ContentManifests.ChunkLength(manifest, 2));
        Assert.True(ContentManifests.IsContentId(id));
        Assert.Null(ContentManifests.Check(manifest, id));

        data[^1] ^= 1;
        var other = await ContentManifests.BuildAsync(new MemoryStream(data));
        Assert.Contains("does not hash to", ContentManifests.Check(other, id), StringComparison.Ordinal);
        other.ChunkHashes.RemoveAt(2);
        Assert.Contains("chunk hashes", ContentManifests.Check(other, id), StringComparison.Ordinal);
    }

    [Fact]
    public void ACertificateFromAPeerKeyStandsForThatPeerOnly()
    {
        using var certificate = _recipient.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(1));

        Assert.True(PeerCertificates.Belongs(certificate, _recipient.Id));
        Assert.False(PeerCertificates.Belongs(certificate, _other.Id));
        Assert.True(certificate.HasPrivateKey);
    }
}
