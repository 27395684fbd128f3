using System.Globalization;
using Orleans.Storage;

namespace Hybrid.Supernode.Storage;

/// <summary>
/// Grain storage for the embedded supernode, in <see cref="SqliteDatabase"/>. ETags are row
/// versions, so a stale activation cannot overwrite a newer state; a write returns once durable.
/// </summary>
public sealed class SqliteGrainStorage(SqliteDatabase database, IGrainStorageSerializer serializer) : IGrainStorage
{
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        await using var connection = database.Open();
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
        grainState.State = serializer.Deserialize<T>(new BinaryData((byte[])reader[1]));
        grainState.RecordExists = true;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        var data = serializer.Serialize(grainState.State).ToArray();
        var id = grainId.ToString();
        var expected = grainState.ETag is null ? (long?)null : long.Parse(grainState.ETag, CultureInfo.InvariantCulture);
        var next = await database.WriteAsync(command =>
        {
            if (expected is { } current)
            {
                command.CommandText = "UPDATE grain_state SET etag = $next, data = $data WHERE grain_id = $id AND state_name = $state AND etag = $etag";
                command.Parameters.AddWithValue("$etag", current);
                command.Parameters.AddWithValue("$next", current + 1);
            }
            else
            {
                command.CommandText = "INSERT INTO grain_state (grain_id, state_name, etag, data) VALUES ($id, $state, 1, $data) ON CONFLICT DO NOTHING";
            }

            command.Parameters.AddWithValue("$id", id);
            command.Parameters.AddWithValue("$state", stateName);
            command.Parameters.AddWithValue("$data", data);
            return command.ExecuteNonQuery() == 1
                ? (expected ?? 0) + 1
                : throw new InconsistentStateException($"{stateName} of {id} was changed by another activation (stored version differs from {expected?.ToString(CultureInfo.InvariantCulture) ?? "none"})");
        });
        grainState.ETag = next.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        if (grainState.ETag is { } etag)
        {
            var id = grainId.ToString();
            var expected = long.Parse(etag, CultureInfo.InvariantCulture);
            await database.WriteAsync(command =>
            {
                command.CommandText = "DELETE FROM grain_state WHERE grain_id = $id AND state_name = $state AND etag = $etag";
                command.Parameters.AddWithValue("$id", id);
                command.Parameters.AddWithValue("$state", stateName);
                command.Parameters.AddWithValue("$etag", expected);
                return command.ExecuteNonQuery() == 1
                    ? true
                    : throw new InconsistentStateException($"{stateName} of {id} was changed by another activation before it could be cleared");
            });
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = Activator.CreateInstance<T>();
    }
}
