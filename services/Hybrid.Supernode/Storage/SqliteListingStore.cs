using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Hybrid.Index.Listings;
using Microsoft.Data.Sqlite;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// Listings of the embedded supernode, in the same SQLite file as grain state. Writes from all
/// shards are group-committed: one writer takes whatever is queued, commits it in one transaction
/// (one fsync), then acknowledges every write in it. A write is acknowledged only once durable.
/// </summary>
public sealed class SqliteListingStore : IListingStore, IAsyncDisposable
{
    private const int MaxBatch = 512;
    private readonly string _connectionString;
    private readonly Channel<PendingWrite> _queue = Channel.CreateUnbounded<PendingWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    public SqliteListingStore(string databasePath)
    {
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        using (var connection = Open())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = """
                PRAGMA journal_mode = WAL;
                CREATE TABLE IF NOT EXISTS listings (
                    listing_id TEXT    NOT NULL PRIMARY KEY,
                    shard      INTEGER NOT NULL,
                    seller     TEXT    NOT NULL,
                    version    INTEGER NOT NULL,
                    expires_ms INTEGER NOT NULL,
                    withdrawn  INTEGER NOT NULL,
                    envelope   BLOB    NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS listings_by_shard ON listings (shard);
                """;
            command.ExecuteNonQuery();
        }

        _writer = Task.Run(WriteLoopAsync);
    }

    public Task SaveAsync(int shard, StoredListing listing)
    {
        var pending = new PendingWrite(shard, listing, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        return _queue.Writer.TryWrite(pending) ? pending.Done.Task : Task.FromException(new ObjectDisposedException(nameof(SqliteListingStore)));
    }

    public async Task<StoredListing?> GetAsync(int shard, string listingId)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT listing_id, seller, version, expires_ms, withdrawn, envelope FROM listings WHERE listing_id = $id";
        command.Parameters.AddWithValue("$id", listingId);
        await using var reader = await command.ExecuteReaderAsync();
        return await reader.ReadAsync() ? Read(reader) : null;
    }

    public async IAsyncEnumerable<StoredListing> ReadShardAsync(int shard, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT listing_id, seller, version, expires_ms, withdrawn, envelope FROM listings WHERE shard = $shard";
        command.Parameters.AddWithValue("$shard", shard);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return Read(reader);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer;
    }

    private static StoredListing Read(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        (ulong)reader.GetInt64(2),
        reader.GetInt64(3),
        reader.GetInt64(4) != 0,
        (byte[])reader[5]);

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA synchronous = FULL;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<PendingWrite>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var next))
            {
                batch.Add(next);
            }

            try
            {
                Commit(batch);
                batch.ForEach(w => w.Done.TrySetResult());
            }
            catch (SqliteException ex)
            {
                batch.ForEach(w => w.Done.TrySetException(ex));
            }

            batch.Clear();
        }
    }

    private void Commit(List<PendingWrite> batch)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO listings (listing_id, shard, seller, version, expires_ms, withdrawn, envelope)
            VALUES ($id, $shard, $seller, $version, $expires, $withdrawn, $envelope)
            ON CONFLICT (listing_id) DO UPDATE SET seller = excluded.seller, version = excluded.version,
                expires_ms = excluded.expires_ms, withdrawn = excluded.withdrawn, envelope = excluded.envelope
            """;
        var id = command.Parameters.Add("$id", SqliteType.Text);
        var shard = command.Parameters.Add("$shard", SqliteType.Integer);
        var seller = command.Parameters.Add("$seller", SqliteType.Text);
        var version = command.Parameters.Add("$version", SqliteType.Integer);
        var expires = command.Parameters.Add("$expires", SqliteType.Integer);
        var withdrawn = command.Parameters.Add("$withdrawn", SqliteType.Integer);
        var envelope = command.Parameters.Add("$envelope", SqliteType.Blob);
        foreach (var write in batch)
        {
            id.Value = write.Listing.ListingId;
            shard.Value = write.Shard;
            seller.Value = write.Listing.Seller;
            version.Value = (long)write.Listing.Version;
            expires.Value = write.Listing.ExpiresMs;
            withdrawn.Value = write.Listing.Withdrawn ? 1 : 0;
            envelope.Value = write.Listing.Envelope;
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    private sealed record PendingWrite(int Shard, StoredListing Listing, TaskCompletionSource Done);
}
