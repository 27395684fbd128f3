using Hybrid.Protocol.Identity;

namespace Hybrid.Protocol.Tests;

public sealed class PeerIdTests
{
    [Fact]
    public void PeerIdRoundTripsThroughItsGroupedText()
    {
        using var identity = PeerIdentity.Generate();
        var text = identity.Id.ToString();

        Assert.Matches("^([A-Z2-7]{7}-){7}[A-Z2-7]{7}$", text);
        Assert.Equal(identity.Id, PeerId.Parse(text));
    }

    [Fact]
    public void ParsingIgnoresCaseDashesAndSpaces()
    {
        using var identity = PeerIdentity.Generate();
        var text = identity.Id.ToString();

        Assert.Equal(identity.Id, PeerId.Parse(text.ToLowerInvariant()));
        Assert.Equal(identity.Id, PeerId.Parse(text.Replace("-", " ", StringComparison.Ordinal)));
        Assert.Equal(identity.Id, PeerId.Parse(text.Replace("-", string.Empty, StringComparison.Ordinal)));
    }

    [Fact]
    public void PeerIdIsTheHashOfThePublicKey()
    {
        using var identity = PeerIdentity.Generate();
        using var other = PeerIdentity.Generate();

        Assert.Equal(System.Security.Cryptography.SHA256.HashData(identity.PublicKey), identity.Id.Hash.ToArray());
        Assert.True(identity.Id.Matches(identity.PublicKey));
        Assert.False(identity.Id.Matches(other.PublicKey));
        Assert.NotEqual(identity.Id, other.Id);
    }

    [Fact]
    public void ATypoIsCaughtByTheCheckCharacters()
    {
        using var identity = PeerIdentity.Generate();
        var text = identity.Id.ToString().ToCharArray();
        // Change one data character (position 2 of the first group) to another valid base32 character.
        text[2] = text[2] == 'A' ? 'B' : 'A';

        var ok = PeerId.TryParse(new string(text), out _, out var error);

        Assert.False(ok);
        Assert.Contains("typo", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("ABC", "3 characters")]
    [InlineData("ABCDEFG-HIJKLMN-OPQRSTU-VWXYZ01-ABCDEFG-HIJKLMN-OPQRSTU-VWXYZ23", "'0'")]
    public void MalformedTextIsRefusedWithAReason(string text, string reason)
    {
        var ok = PeerId.TryParse(text, out _, out var error);

        Assert.False(ok);
        Assert.Contains(reason, error, StringComparison.Ordinal);
        var thrown = Assert.Throws<FormatException>(() => PeerId.Parse(text));
        Assert.Equal(error, thrown.Message);
    }

    [Fact]
    public void TheUnusedLowBitsMustBeZero()
    {
        using var identity = PeerIdentity.Generate();
        var plain = identity.Id.ToString().Replace("-", string.Empty, StringComparison.Ordinal);
        // Drop the four check characters (every 14th), leaving the 52 plain characters.
        var withoutChecks = string.Concat(Enumerable.Range(0, 4).Select(i => plain.Substring(i * 14, 13)));
        Assert.Equal(identity.Id, PeerId.Parse(withoutChecks));

        // The last character carries 1 bit of the hash and 4 padding bits; setting a padding bit is another text for no id.
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var last = alphabet.IndexOf(withoutChecks[^1], StringComparison.Ordinal);
        var tampered = withoutChecks[..^1] + alphabet[last | 1];

        Assert.False(PeerId.TryParse(tampered, out _, out var error));
        Assert.Contains("256-bit", error, StringComparison.Ordinal);
    }

    [Fact]
    public void IdentitySurvivesPemRoundTrip()
    {
        using var identity = PeerIdentity.Generate();
        using var loaded = PeerIdentity.FromPrivateKeyPem(identity.ExportPrivateKeyPem());

        Assert.Equal(identity.Id, loaded.Id);
        Assert.True(PublicKeys.VerifySignature(identity.PublicKey, "hello"u8, loaded.Sign("hello"u8)));
    }
}
