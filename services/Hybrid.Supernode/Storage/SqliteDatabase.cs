using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// The embedded supernode's one SQLite file (WAL): grain state and listings. Every write goes
/// through one writer that group-commits whatever is queued in one transaction (one fsync with
/// synchronous=FULL) and acknowledges each write only after that commit, so what a client was
/// told is stored survives kill -9 and power loss, at far more writes per second than one
/// transaction per write would allow.
/// </summary>
public sealed class SqliteDatabase : IAsyncDisposable
{
    private const int MaxBatch = 512;
    private readonly string _connectionString;
    private readonly Channel<IPendingWrite> _queue = Channel.CreateUnbounded<IPendingWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    public SqliteDatabase(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        using (var connection = Open())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = """
                PRAGMA journal_mode = WAL;
                CREATE TABLE IF NOT EXISTS grain_state (
                    grain_id   TEXT    NOT NULL,
                    state_name TEXT    NOT NULL,
                    etag       INTEGER NOT NULL,
                    data       BLOB    NOT NULL,
                    PRIMARY KEY (grain_id, state_name)
                ) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS listings (
                    listing_id TEXT    NOT NULL PRIMARY KEY,
                    shard      INTEGER NOT NULL,
                    seller     TEXT    NOT NULL,
                    version    INTEGER NOT NULL,
                    expires_ms INTEGER NOT NULL,
                    withdrawn  INTEGER NOT NULL,
                    envelope   BLOB    NOT NULL,
                    withdrawal BLOB,
                    origin     TEXT
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS listings_by_shard ON listings (shard);
                CREATE TABLE IF NOT EXISTS claims (
                    owner TEXT    NOT NULL PRIMARY KEY,
                    claim INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS items (
                    item_set TEXT NOT NULL,
                    field    TEXT NOT NULL,
                    value    BLOB NOT NULL,
                    PRIMARY KEY (item_set, field)
                ) WITHOUT ROWID;
                """;
            command.ExecuteNonQuery();
            // Stores made before withdrawals and origins were kept gain the columns (empty for what they hold).
            foreach (var (column, type) in new[] { ("withdrawal", "BLOB"), ("origin", "TEXT") })
            {
                command.CommandText = $"SELECT COUNT(*) FROM pragma_table_info('listings') WHERE name = '{column}'";
                if (Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
                {
                    command.CommandText = $"ALTER TABLE listings ADD COLUMN {column} {type}";
                    command.ExecuteNonQuery();
                }
            }
        }

        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>
    /// A connection for reads, look-ups by key and walks of a whole shard alike (WAL lets them run
    /// beside the writer). The file is read with plain reads, not through a memory map: a WAL reader
    /// drops its whole map at the first read after any commit, and the next reads fault every page in
    /// again. At a million listings under 20 publishes a second, unmapping and faulting took a quarter
    /// of the supernode's CPU and search fell to a quarter of its quiet rate; read without the map, it
    /// stays at 0.7 of it, and nothing measurable is lost while no one writes.
    /// </summary>
    public SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    /// <summary>The writer's connection: every commit is synced before it is acknowledged.</summary>
    private SqliteConnection OpenForWrite()
    {
        var connection = Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA synchronous = FULL;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    /// <summary>
    /// Runs <paramref name="write"/> inside the next group commit; completes once it is durable.
    /// An exception thrown by <paramref name="write"/> itself fails only that write (a write must
    /// not change anything before it throws); a storage fault fails the whole batch.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<SqliteCommand, T> write)
    {
        var pending = new PendingWrite<T>(write);
        return _queue.Writer.TryWrite(pending) ? pending.Done.Task : Task.FromException<T>(new ObjectDisposedException(nameof(SqliteDatabase)));
    }

    private const string LatestClaim = "SELECT claim FROM claims WHERE owner = $owner";

    /// <summary>Claims <paramref name="owner"/> anew (see <see cref="Hybrid.Index.Storage.StoreClaim"/>): the next number, durably.</summary>
    public Task<long> ClaimAsync(string owner) => WriteAsync(command =>
    {
        command.CommandText = "INSERT INTO claims (owner, claim) VALUES ($owner, 1) ON CONFLICT (owner) DO UPDATE SET claim = claim + 1 RETURNING claim";
        command.Parameters.AddWithValue("$owner", owner);
        return (long)command.ExecuteScalar()!;
    });

    /// <summary>The latest claim of <paramref name="owner"/>, 0 when never claimed.</summary>
    public async Task<long> ClaimOfAsync(string owner)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = LatestClaim;
        command.Parameters.AddWithValue("$owner", owner);
        return await command.ExecuteScalarAsync() is long claim ? claim : 0;
    }

    /// <summary>
    /// Inside a write (<see cref="WriteAsync{T}"/>), before it changes anything: throws when
    /// <paramref name="claim"/> is no longer its owner's latest, which fails that write alone. Leaves
    /// <paramref name="command"/> without text or parameters for the write itself.
    /// </summary>
    public static void RequireLatest(SqliteCommand command, string owner, long claim)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.CommandText = LatestClaim;
        command.Parameters.AddWithValue("$owner", owner);
        var latest = command.ExecuteScalar() is long held ? held : 0;
        command.Parameters.Clear();
        if (latest != claim)
        {
            throw Hybrid.Index.Storage.StoreClaim.Superseded(owner, claim, latest);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<IPendingWrite>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var next))
            {
                batch.Add(next);
            }

            try
            {
                using var connection = OpenForWrite();
                using var transaction = connection.BeginTransaction();
                foreach (var write in batch)
                {
                    using var command = connection.CreateCommand();
                    command.Transaction = transaction;
                    write.Run(command);
                }

                transaction.Commit();
                batch.ForEach(w => w.Commit());
            }
            catch (SqliteException ex)
            {
                batch.ForEach(w => w.Fail(ex));
            }

            batch.Clear();
        }
    }

    private interface IPendingWrite
    {
        void Run(SqliteCommand command);

        void Commit();

        void Fail(Exception ex);
    }

    private sealed class PendingWrite<T>(Func<SqliteCommand, T> write) : IPendingWrite
    {
        private T? _result;
        private Exception? _refused;

        public TaskCompletionSource<T> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Run(SqliteCommand command)
        {
            try
            {
                _result = write(command);
            }
            catch (Exception ex) when (ex is not SqliteException)
            {
                _refused = ex;
            }
        }

        public void Commit()
        {
            if (_refused is not null)
            {
                Done.TrySetException(_refused);
            }
            else
            {
                Done.TrySetResult(_result!);
            }
        }

        public void Fail(Exception ex) => Done.TrySetException(ex);
    }
}
