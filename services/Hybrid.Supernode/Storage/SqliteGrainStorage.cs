using System.Globalization;
using Microsoft.Data.Sqlite;
using Orleans.Storage;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// Grain storage for the embedded supernode: one SQLite file in WAL mode under DataDir.
/// A write returns only once SQLite has committed it (synchronous=FULL), so what a client
/// was told is stored survives <c>kill -9</c> and power loss alike. ETags are row versions,
/// so a stale activation cannot overwrite a newer state.
/// </summary>
public sealed class SqliteGrainStorage : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
{
    private readonly string _name;
    private readonly string _connectionString;
    private readonly IGrainStorageSerializer _serializer;

    public SqliteGrainStorage(string name, string databasePath, IGrainStorageSerializer serializer)
    {
        _name = name;
        _serializer = serializer;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe($"{nameof(SqliteGrainStorage)}-{_name}", ServiceLifecycleStage.ApplicationServices, InitializeAsync);
    }

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT etag, data FROM grain_state WHERE grain_id = $id AND state_name = $state";
        command.Parameters.AddWithValue("$id", grainId.ToString());
        command.Parameters.AddWithValue("$state", stateName);
        await using var reader = await command.ExecuteReaderAsync();
        if (!await reader.ReadAsync())
        {
            grainState.State = Activator.CreateInstance<T>();
            grainState.ETag = null;
            grainState.RecordExists = false;
            return;
        }

        grainState.ETag = reader.GetInt64(0).ToString(CultureInfo.InvariantCulture);
        grainState.State = _serializer.Deserialize<T>(new BinaryData((byte[])reader[1]));
        grainState.RecordExists = true;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        var data = _serializer.Serialize(grainState.State).ToArray();
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        long next;
        if (grainState.ETag is null)
        {
            next = 1;
            command.CommandText = "INSERT INTO grain_state (grain_id, state_name, etag, data) VALUES ($id, $state, 1, $data) ON CONFLICT DO NOTHING";
        }
        else
        {
            var current = long.Parse(grainState.ETag, CultureInfo.InvariantCulture);
            next = current + 1;
            command.CommandText = "UPDATE grain_state SET etag = $next, data = $data WHERE grain_id = $id AND state_name = $state AND etag = $etag";
            command.Parameters.AddWithValue("$etag", current);
            command.Parameters.AddWithValue("$next", next);
        }

        command.Parameters.AddWithValue("$id", grainId.ToString());
        command.Parameters.AddWithValue("$state", stateName);
        command.Parameters.AddWithValue("$data", data);
        if (await command.ExecuteNonQueryAsync() != 1)
        {
            throw new InconsistentStateException($"{stateName} of {grainId} was changed by another activation (stored version differs from {grainState.ETag ?? "none"})");
        }

        grainState.ETag = next.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        if (grainState.ETag is not null)
        {
            await using var connection = await OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM grain_state WHERE grain_id = $id AND state_name = $state AND etag = $etag";
            command.Parameters.AddWithValue("$id", grainId.ToString());
            command.Parameters.AddWithValue("$state", stateName);
            command.Parameters.AddWithValue("$etag", long.Parse(grainState.ETag, CultureInfo.InvariantCulture));
            if (await command.ExecuteNonQueryAsync() != 1)
            {
                throw new InconsistentStateException($"{stateName} of {grainId} was changed by another activation before it could be cleared");
            }
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = Activator.CreateInstance<T>();
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS grain_state (
                grain_id   TEXT    NOT NULL,
                state_name TEXT    NOT NULL,
                etag       INTEGER NOT NULL,
                data       BLOB    NOT NULL,
                PRIMARY KEY (grain_id, state_name)
            ) WITHOUT ROWID;
            """;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = "PRAGMA synchronous = FULL;";
            await pragma.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}
