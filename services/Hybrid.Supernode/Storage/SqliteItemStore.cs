using System.Runtime.CompilerServices;
using Hybrid.Index.Storage;

namespace Hybrid.Supernode.Storage;

/// <summary>Item sets of the embedded supernode: rows of one table in <see cref="SqliteDatabase"/>, written through its batching writer.</summary>
public sealed class SqliteItemStore(SqliteDatabase database) : IItemStore
{
    public async Task<StoreClaim> ClaimAsync(string owner) => new(owner, await database.ClaimAsync(owner));

    public Task PutAsync(string itemSet, string field, ReadOnlyMemory<byte> value, StoreClaim? claim = null)
    {
        var bytes = value.ToArray();
        return database.WriteAsync(command =>
        {
            if (claim is { } held)
            {
                SqliteDatabase.RequireLatest(command, held.Owner, held.Number);
            }

            command.CommandText = "INSERT INTO items (item_set, field, value) VALUES ($s, $f, $v) ON CONFLICT (item_set, field) DO UPDATE SET value = excluded.value";
            command.Parameters.AddWithValue("$s", itemSet);
            command.Parameters.AddWithValue("$f", field);
            command.Parameters.AddWithValue("$v", bytes);
            return command.ExecuteNonQuery();
        });
    }

    public Task RemoveAsync(string itemSet, string field, StoreClaim? claim = null) => database.WriteAsync(command =>
    {
        if (claim is { } held)
        {
            SqliteDatabase.RequireLatest(command, held.Owner, held.Number);
        }

        command.CommandText = "DELETE FROM items WHERE item_set = $s AND field = $f";
        command.Parameters.AddWithValue("$s", itemSet);
        command.Parameters.AddWithValue("$f", field);
        return command.ExecuteNonQuery();
    });

    public async Task<byte[]?> GetAsync(string itemSet, string field)
    {
        await using var connection = database.Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM items WHERE item_set = $s AND field = $f";
        command.Parameters.AddWithValue("$s", itemSet);
        command.Parameters.AddWithValue("$f", field);
        return await command.ExecuteScalarAsync() as byte[];
    }

    public async IAsyncEnumerable<KeyValuePair<string, byte[]>> ReadAllAsync(string itemSet, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = database.Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT field, value FROM items WHERE item_set = $s";
        command.Parameters.AddWithValue("$s", itemSet);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return new(reader.GetString(0), (byte[])reader[1]);
        }
    }
}
