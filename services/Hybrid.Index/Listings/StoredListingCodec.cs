namespace Hybrid.Index.Listings;

/// <summary>The byte form of a <see cref="StoredListing"/> in key-value stores; versioned by its first byte.</summary>
public static class StoredListingCodec
{
    // 1: without the withdrawal; 2: with it (length -1 when none); 3: and the origin cluster ("" when none). All are read.
    private const byte FormatVersion = 3;

    public static byte[] Encode(StoredListing listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        using var buffer = new MemoryStream(listing.Envelope.Length + 128);
        using (var writer = new BinaryWriter(buffer))
        {
            writer.Write(FormatVersion);
            writer.Write(listing.ListingId);
            writer.Write(listing.Seller);
            writer.Write(listing.Version);
            writer.Write(listing.ExpiresMs);
            writer.Write(listing.Withdrawn);
            writer.Write(listing.Envelope.Length);
            writer.Write(listing.Envelope);
            writer.Write(listing.Withdrawal?.Length ?? -1);
            if (listing.Withdrawal is { } withdrawal)
            {
                writer.Write(withdrawal);
            }

            writer.Write(listing.Origin ?? string.Empty);
        }

        return buffer.ToArray();
    }

    /// <exception cref="InvalidDataException">The bytes are not a stored listing this code can read.</exception>
    public static StoredListing Decode(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var reader = new BinaryReader(new MemoryStream(bytes));
        var format = reader.ReadByte();
        if (format is not (1 or 2 or FormatVersion))
        {
            throw new InvalidDataException($"stored listing format {format} is unknown (this supernode reads {FormatVersion})");
        }

        var id = reader.ReadString();
        var seller = reader.ReadString();
        var version = reader.ReadUInt64();
        var expires = reader.ReadInt64();
        var withdrawn = reader.ReadBoolean();
        var envelope = reader.ReadBytes(reader.ReadInt32());
        var withdrawalLength = format == 1 ? -1 : reader.ReadInt32();
        var withdrawal = withdrawalLength < 0 ? null : reader.ReadBytes(withdrawalLength);
        var origin = format >= 3 ? reader.ReadString() : string.Empty;
        return new StoredListing(id, seller, version, expires, withdrawn, envelope, withdrawal, origin.Length == 0 ? null : origin);
    }
}
