namespace Hybrid.Index.Mailbox;

/// <summary>The stored form of mailbox items and remembered deliveries: compact binary, versioned by a leading byte.</summary>
internal static class MailCodec
{
    private const byte Version = 1;

    public static byte[] Encode(StoredMail item)
    {
        using var buffer = new MemoryStream(item.SealedItem.Length + 128);
        using (var writer = new BinaryWriter(buffer))
        {
            writer.Write(Version);
            writer.Write(item.ItemId);
            writer.Write(item.Sender);
            writer.Write(item.Deposited.ToUnixTimeMilliseconds());
            writer.Write(item.Expires.ToUnixTimeMilliseconds());
            writer.Write(item.SealedItem.Length);
            writer.Write(item.SealedItem);
        }

        return buffer.ToArray();
    }

    public static StoredMail DecodeItem(byte[] value)
    {
        using var reader = Reader(value);
        var itemId = reader.ReadString();
        var sender = reader.ReadString();
        var deposited = DateTimeOffset.FromUnixTimeMilliseconds(reader.ReadInt64());
        var expires = DateTimeOffset.FromUnixTimeMilliseconds(reader.ReadInt64());
        var sealedItem = reader.ReadBytes(reader.ReadInt32());
        return new StoredMail(itemId, sender, sealedItem, deposited, expires);
    }

    public static byte[] Encode(DeliveredMail delivered)
    {
        using var buffer = new MemoryStream(128);
        using (var writer = new BinaryWriter(buffer))
        {
            writer.Write(Version);
            writer.Write(delivered.Sender);
            writer.Write(delivered.ForgetAfter.ToUnixTimeMilliseconds());
        }

        return buffer.ToArray();
    }

    public static DeliveredMail DecodeDelivered(byte[] value)
    {
        using var reader = Reader(value);
        return new DeliveredMail(reader.ReadString(), DateTimeOffset.FromUnixTimeMilliseconds(reader.ReadInt64()));
    }

    private static BinaryReader Reader(byte[] value)
    {
        var reader = new BinaryReader(new MemoryStream(value, writable: false));
        var version = reader.ReadByte();
        return version == Version ? reader : throw new InvalidDataException($"a mailbox record of version {version}; this supernode reads version {Version}");
    }
}
