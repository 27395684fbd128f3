using System.Globalization;
using System.Runtime.CompilerServices;
using Hybrid.Index.Listings;
using Hybrid.Index.Storage;
using Microsoft.Data.Sqlite;

namespace Hybrid.Supernode.Storage;

/// <summary>Listings of the embedded supernode, in <see cref="SqliteDatabase"/> beside grain state.</summary>
public sealed class SqliteListingStore(SqliteDatabase database) : IListingStore
{
    private const string Columns = "listing_id, seller, version, expires_ms, withdrawn, envelope, withdrawal, origin";

    public Task<long> ClaimAsync(int shard) => database.ClaimAsync(StoreClaim.Listings(shard));

    public Task<long> ClaimOfAsync(int shard) => database.ClaimOfAsync(StoreClaim.Listings(shard));

    public async Task<bool> SaveAsync(int shard, StoredListing listing, long claim)
    {
        ArgumentNullException.ThrowIfNull(listing);
        return await database.WriteAsync(command =>
        {
            SqliteDatabase.RequireLatest(command, StoreClaim.Listings(shard), claim);
            // The upsert changes no row when the stored version is the same or newer.
            command.CommandText = """
                INSERT INTO listings (listing_id, shard, seller, version, expires_ms, withdrawn, envelope, withdrawal, origin)
                VALUES ($id, $shard, $seller, $version, $expires, $withdrawn, $envelope, $withdrawal, $origin)
                ON CONFLICT (listing_id) DO UPDATE SET seller = excluded.seller, version = excluded.version,
                    expires_ms = excluded.expires_ms, withdrawn = excluded.withdrawn, envelope = excluded.envelope,
                    withdrawal = excluded.withdrawal, origin = excluded.origin
                WHERE excluded.version > listings.version
                """;
            command.Parameters.AddWithValue("$id", listing.ListingId);
            command.Parameters.AddWithValue("$shard", shard);
            command.Parameters.AddWithValue("$seller", listing.Seller);
            command.Parameters.AddWithValue("$version", (long)listing.Version);
            command.Parameters.AddWithValue("$expires", listing.ExpiresMs);
            command.Parameters.AddWithValue("$withdrawn", listing.Withdrawn ? 1 : 0);
            command.Parameters.AddWithValue("$envelope", listing.Envelope);
            command.Parameters.AddWithValue("$withdrawal", (object?)listing.Withdrawal ?? DBNull.Value);
            command.Parameters.AddWithValue("$origin", (object?)listing.Origin ?? DBNull.Value);
            return command.ExecuteNonQuery();
        }) == 1;
    }

    public async Task<StoredListing?> GetAsync(int shard, string listingId)
    {
        await using var connection = database.Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM listings WHERE listing_id = $id AND +shard = $shard";
        command.Parameters.AddWithValue("$id", listingId);
        command.Parameters.AddWithValue("$shard", shard);
        await using var reader = await command.ExecuteReaderAsync();
        return await reader.ReadAsync() ? Read(reader) : null;
    }

    public async Task<IReadOnlyList<StoredListing>> GetManyAsync(int shard, IReadOnlyList<string> listingIds)
    {
        ArgumentNullException.ThrowIfNull(listingIds);
        if (listingIds.Count == 0)
        {
            return [];
        }

        await using var connection = database.Open();
        await using var command = connection.CreateCommand();
        // "+shard": looked up by primary key, never by scanning the shard's index.
        // One parameter per id ($i0, $i1, ...): a page is at most a few hundred ids, far below SQLite's limit.
        command.CommandText = $"SELECT {Columns} FROM listings WHERE listing_id IN ({string.Join(", ", listingIds.Select((_, i) => "$i" + i.ToString(CultureInfo.InvariantCulture)))}) AND +shard = $shard";
        command.Parameters.AddWithValue("$shard", shard);
        for (var i = 0; i < listingIds.Count; i++)
        {
            command.Parameters.AddWithValue("$i" + i.ToString(CultureInfo.InvariantCulture), listingIds[i]);
        }

        var found = new List<StoredListing>(listingIds.Count);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            found.Add(Read(reader));
        }

        return found;
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
        (byte[])reader[5],
        reader.IsDBNull(6) ? null : (byte[])reader[6],
        reader.IsDBNull(7) ? null : reader.GetString(7));
}
