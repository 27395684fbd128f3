using System.Runtime.CompilerServices;
using Hybrid.Index.Listings;
using Microsoft.Data.Sqlite;

namespace Hybrid.Supernode.Storage;

/// <summary>Listings of the embedded supernode, in <see cref="SqliteDatabase"/> beside grain state.</summary>
public sealed class SqliteListingStore(SqliteDatabase database) : IListingStore
{
    private const string Columns = "listing_id, seller, version, expires_ms, withdrawn, envelope";

    public Task SaveAsync(int shard, StoredListing listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        return database.WriteAsync(command =>
        {
            command.CommandText = """
                INSERT INTO listings (listing_id, shard, seller, version, expires_ms, withdrawn, envelope)
                VALUES ($id, $shard, $seller, $version, $expires, $withdrawn, $envelope)
                ON CONFLICT (listing_id) DO UPDATE SET seller = excluded.seller, version = excluded.version,
                    expires_ms = excluded.expires_ms, withdrawn = excluded.withdrawn, envelope = excluded.envelope
                WHERE excluded.version > listings.version
                """;
            command.Parameters.AddWithValue("$id", listing.ListingId);
            command.Parameters.AddWithValue("$shard", shard);
            command.Parameters.AddWithValue("$seller", listing.Seller);
            command.Parameters.AddWithValue("$version", (long)listing.Version);
            command.Parameters.AddWithValue("$expires", listing.ExpiresMs);
            command.Parameters.AddWithValue("$withdrawn", listing.Withdrawn ? 1 : 0);
            command.Parameters.AddWithValue("$envelope", listing.Envelope);
            return command.ExecuteNonQuery();
        });
    }

    public async Task<StoredListing?> GetAsync(int shard, string listingId)
    {
        await using var connection = database.Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM listings WHERE listing_id = $id";
        command.Parameters.AddWithValue("$id", listingId);
        await using var reader = await command.ExecuteReaderAsync();
        return await reader.ReadAsync() ? Read(reader) : null;
    }

    public async IAsyncEnumerable<StoredListing> ReadShardAsync(int shard, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = database.Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM listings WHERE shard = $shard";
        command.Parameters.AddWithValue("$shard", shard);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return Read(reader);
        }
    }

    private static StoredListing Read(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        (ulong)reader.GetInt64(2),
        reader.GetInt64(3),
        reader.GetInt64(4) != 0,
        (byte[])reader[5]);
}
