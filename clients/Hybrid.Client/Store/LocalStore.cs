using Hybrid.Protocol.Identity;
using Microsoft.Data.Sqlite;

namespace Hybrid.Client.Store;

/// <summary>One chat message as stored on this side.</summary>
public sealed record ChatRow(long RowId, string Peer, string Direction, ulong Sequence, string Text, long SentMs, string Status);

/// <summary>One order as this side knows it; <see cref="Steps"/> holds its progress steps and verdict (a serialized <c>Receipt</c> with those fields only).</summary>
public sealed record OrderRow(
    string OrderId,
    string Role,
    string Counterparty,
    string ListingId,
    string Title,
    string Price,
    uint Quantity,
    string State,
    string ContentId,
    byte[] Offer,
    byte[]? Acceptance,
    byte[]? Completion,
    long UpdatedMs,
    string Delivery,
    byte[]? Steps = null);

/// <summary>Goods data this peer serves: the file and its manifest.</summary>
public sealed record ContentRow(string ContentId, string Path, byte[] Manifest, bool Free);

/// <summary>A message left in a recipient's mailbox, until the recipient has taken it.</summary>
public sealed record MailRow(string ItemId, string Recipient, string Kind, string Reference);

/// <summary>A mailbox item this peer could not open, parse or verify: acknowledged, and remembered here.</summary>
public sealed record RefusedMailRow(string ItemId, string Sender, string Reason, long RefusedMs);

/// <summary>
/// A user's local store (SQLite, WAL, in the home directory): chats, orders, the goods this peer
/// serves and mailbox deliveries in flight. The daemon and one-off CLI commands may open it at once.
/// </summary>
public sealed class LocalStore : IDisposable
{
    private const string Schema = """
        PRAGMA journal_mode=WAL;
        CREATE TABLE IF NOT EXISTS chats (
            peer TEXT NOT NULL, direction TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL,
            sent_ms INTEGER NOT NULL, status TEXT NOT NULL, PRIMARY KEY (peer, direction, seq));
        CREATE TABLE IF NOT EXISTS orders (
            order_id TEXT PRIMARY KEY, role TEXT NOT NULL, counterparty TEXT NOT NULL, listing_id TEXT NOT NULL,
            title TEXT NOT NULL, price TEXT NOT NULL, quantity INTEGER NOT NULL, state TEXT NOT NULL,
            content_id TEXT NOT NULL, offer BLOB NOT NULL, acceptance BLOB, completion BLOB,
            updated_ms INTEGER NOT NULL, delivery TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS contents (
            content_id TEXT PRIMARY KEY, path TEXT NOT NULL, manifest BLOB NOT NULL, free INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS mail_out (
            item_id TEXT PRIMARY KEY, recipient TEXT NOT NULL, kind TEXT NOT NULL, reference TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS mail_refused (
            item_id TEXT PRIMARY KEY, sender TEXT NOT NULL, reason TEXT NOT NULL, refused_ms INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS orders_by_time ON orders (updated_ms DESC, order_id DESC);
        CREATE INDEX IF NOT EXISTS orders_by_counterparty ON orders (counterparty, role, state);
        """;

    /// <summary>Refused mailbox items remembered (the newest); older ones are forgotten.</summary>
    public const int RefusedMailKept = 200;

    private readonly SqliteConnection _db;
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Opens (creating if needed) the store at <paramref name="path"/>.</summary>
    public LocalStore(string path)
    {
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString());
        _db.Open();
        Execute("PRAGMA busy_timeout=10000;");
        Execute(Schema);
        AddColumnIfMissing("orders", "steps", "BLOB");
        Execute("PRAGMA synchronous=NORMAL;");
    }

    /// <summary>Completes at the next change to chats or orders (for followers).</summary>
    public Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    /// <summary>The next outgoing sequence number for <paramref name="peer"/>.</summary>
    public ulong NextSequence(PeerId peer) =>
        (ulong)Scalar<long>("SELECT COALESCE(MAX(seq), 0) + 1 FROM chats WHERE peer = $p AND direction = 'out'", ("$p", peer.ToString()));

    /// <summary>Stores an outgoing message (before it is sent, so nothing acknowledged to the user is lost); returns its cursor.</summary>
    public long AddOutgoingChat(PeerId peer, ulong sequence, string text, long sentMs, string status)
    {
        lock (_gate)
        {
            Write("INSERT INTO chats (peer, direction, seq, text, sent_ms, status) VALUES ($p, 'out', $s, $t, $m, $st)", ("$p", peer.ToString()), ("$s", (long)sequence), ("$t", text), ("$m", sentMs), ("$st", status));
            return Scalar<long>("SELECT last_insert_rowid()");
        }
    }

    /// <summary>Whether the incoming message <paramref name="sequence"/> of <paramref name="peer"/> is stored.</summary>
    public bool HasIncomingChat(PeerId peer, ulong sequence) =>
        Scalar<long>("SELECT COUNT(*) FROM chats WHERE peer = $p AND direction = 'in' AND seq = $s", ("$p", peer.ToString()), ("$s", (long)sequence)) > 0;

    /// <summary>How many incoming messages are stored per peer.</summary>
    public Dictionary<string, int> IncomingChatCounts()
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = "SELECT peer, COUNT(*) FROM chats WHERE direction = 'in' GROUP BY peer";
            using var reader = command.ExecuteReader();
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            while (reader.Read())
            {
                counts[reader.GetString(0)] = reader.GetInt32(1);
            }

            return counts;
        }
    }

    /// <summary>Peers this user has dealt with: written to, ordered from, or accepted an order of.</summary>
    public HashSet<string> Contacts()
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = "SELECT DISTINCT peer FROM chats WHERE direction = 'out' UNION SELECT counterparty FROM orders WHERE role = 'buyer' OR state NOT IN ('offered', 'declined', 'expired')";
            using var reader = command.ExecuteReader();
            var peers = new HashSet<string>(StringComparer.Ordinal);
            while (reader.Read())
            {
                peers.Add(reader.GetString(0));
            }

            return peers;
        }
    }

    /// <summary>Offers received and not answered yet, from <paramref name="buyer"/> or (null) from anyone.</summary>
    public int CountOpenOffers(PeerId? buyer) => buyer is { } b
        ? (int)Scalar<long>("SELECT COUNT(*) FROM orders WHERE counterparty = $p AND role = 'seller' AND state = 'offered'", ("$p", b.ToString()))
        : (int)Scalar<long>("SELECT COUNT(*) FROM orders WHERE role = 'seller' AND state = 'offered'");

    /// <summary>Records how an outgoing message went.</summary>
    public void SetChatStatus(PeerId peer, ulong sequence, string status) =>
        Write("UPDATE chats SET status = $st WHERE peer = $p AND direction = 'out' AND seq = $s", ("$p", peer.ToString()), ("$s", (long)sequence), ("$st", status));

    /// <summary>Stores an incoming message; false when it was already stored (a repeat).</summary>
    public bool AddIncomingChat(PeerId peer, ulong sequence, string text, long sentMs) =>
        Write("INSERT OR IGNORE INTO chats (peer, direction, seq, text, sent_ms, status) VALUES ($p, 'in', $s, $t, $m, 'received')", ("$p", peer.ToString()), ("$s", (long)sequence), ("$t", text), ("$m", sentMs)) > 0;

    /// <summary>
    /// Messages after <paramref name="afterRowId"/>, of one conversation or all, in arrival order: the
    /// first <paramref name="limit"/>, or with <paramref name="newest"/> the last <paramref name="limit"/>.
    /// </summary>
    public IReadOnlyList<ChatRow> ReadChats(PeerId? peer, long afterRowId, int limit = int.MaxValue, bool newest = false)
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            var select = "SELECT rowid, peer, direction, seq, text, sent_ms, status FROM chats WHERE rowid > $after"
                + (peer is null ? string.Empty : " AND peer = $p")
                + (newest ? " ORDER BY rowid DESC" : " ORDER BY rowid") + " LIMIT $limit";
            command.CommandText = newest ? $"SELECT * FROM ({select}) ORDER BY rowid" : select;
            command.Parameters.AddWithValue("$after", afterRowId);
            command.Parameters.AddWithValue("$limit", limit);
            if (peer is { } p)
            {
                command.Parameters.AddWithValue("$p", p.ToString());
            }

            using var reader = command.ExecuteReader();
            var rows = new List<ChatRow>();
            while (reader.Read())
            {
                rows.Add(new ChatRow(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), (ulong)reader.GetInt64(3), reader.GetString(4), reader.GetInt64(5), reader.GetString(6)));
            }

            return rows;
        }
    }

    /// <summary>Inserts or replaces an order.</summary>
    public void SaveOrder(OrderRow order)
    {
        ArgumentNullException.ThrowIfNull(order);
        Write(
            "INSERT OR REPLACE INTO orders (order_id, role, counterparty, listing_id, title, price, quantity, state, content_id, offer, acceptance, completion, updated_ms, delivery, steps) VALUES ($id, $role, $cp, $l, $t, $pr, $q, $st, $c, $o, $a, $co, $u, $d, $s)",
            ("$id", order.OrderId), ("$role", order.Role), ("$cp", order.Counterparty), ("$l", order.ListingId), ("$t", order.Title),
            ("$pr", order.Price), ("$q", (long)order.Quantity), ("$st", order.State), ("$c", order.ContentId), ("$o", order.Offer),
            ("$a", order.Acceptance), ("$co", order.Completion), ("$u", order.UpdatedMs), ("$d", order.Delivery), ("$s", order.Steps));
    }

    /// <summary>One order, or null.</summary>
    public OrderRow? GetOrder(string orderId) => QueryOrders("WHERE order_id = $id", ("$id", orderId)).FirstOrDefault();

    /// <summary>Every order, the most recently changed first.</summary>
    public IReadOnlyList<OrderRow> ListOrders() => QueryOrders("ORDER BY updated_ms DESC, order_id DESC");

    /// <summary>
    /// At most <paramref name="limit"/> orders, the most recently changed first, starting after the
    /// order that last changed at <paramref name="beforeMs"/> with id <paramref name="beforeId"/> (null: from the top).
    /// </summary>
    public IReadOnlyList<OrderRow> ListOrders(int limit, long? beforeMs, string? beforeId) => beforeMs is { } ms
        ? QueryOrders("WHERE (updated_ms < $ms OR (updated_ms = $ms AND order_id < $id)) ORDER BY updated_ms DESC, order_id DESC LIMIT $n", ("$ms", ms), ("$id", beforeId ?? string.Empty), ("$n", limit))
        : QueryOrders("ORDER BY updated_ms DESC, order_id DESC LIMIT $n", ("$n", limit));

    /// <summary>Conversations, the most recent first: the peer, its last message, and how many messages.</summary>
    public IReadOnlyList<(string Peer, string LastText, long LastMs, int Messages)> Conversations(int limit)
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = """
                SELECT c.peer, c.text, c.sent_ms, g.n FROM
                  (SELECT peer, MAX(rowid) AS last, COUNT(*) AS n FROM chats GROUP BY peer ORDER BY last DESC LIMIT $n) g
                  JOIN chats c ON c.rowid = g.last ORDER BY g.last DESC
                """;
            command.Parameters.AddWithValue("$n", limit);
            using var reader = command.ExecuteReader();
            var rows = new List<(string, string, long, int)>();
            while (reader.Read())
            {
                rows.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt32(3)));
            }

            return rows;
        }
    }

    /// <summary>Records goods data this peer serves.</summary>
    public void RegisterContent(ContentRow content)
    {
        ArgumentNullException.ThrowIfNull(content);
        Write("INSERT OR REPLACE INTO contents VALUES ($c, $p, $m, $f)", ("$c", content.ContentId), ("$p", content.Path), ("$m", content.Manifest), ("$f", content.Free ? 1L : 0L));
    }

    /// <summary>Goods data this peer serves, or null.</summary>
    public ContentRow? GetContent(string contentId)
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = "SELECT content_id, path, manifest, free FROM contents WHERE content_id = $c";
            command.Parameters.AddWithValue("$c", contentId);
            using var reader = command.ExecuteReader();
            return reader.Read() ? new ContentRow(reader.GetString(0), reader.GetString(1), (byte[])reader[2], reader.GetInt64(3) != 0) : null;
        }
    }

    /// <summary>Remembers an item left in a mailbox.</summary>
    public void AddMail(MailRow mail)
    {
        ArgumentNullException.ThrowIfNull(mail);
        Write("INSERT OR REPLACE INTO mail_out VALUES ($i, $r, $k, $ref)", ("$i", mail.ItemId), ("$r", mail.Recipient), ("$k", mail.Kind), ("$ref", mail.Reference));
    }

    /// <summary>Items left in mailboxes and not yet known to be delivered.</summary>
    public IReadOnlyList<MailRow> PendingMail()
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = "SELECT item_id, recipient, kind, reference FROM mail_out";
            using var reader = command.ExecuteReader();
            var rows = new List<MailRow>();
            while (reader.Read())
            {
                rows.Add(new MailRow(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
            }

            return rows;
        }
    }

    /// <summary>Remembers a refused mailbox item (bounded: only the newest <see cref="RefusedMailKept"/> stay).</summary>
    public void AddRefusedMail(RefusedMailRow refused)
    {
        ArgumentNullException.ThrowIfNull(refused);
        var reason = refused.Reason.Length <= 300 ? refused.Reason : refused.Reason[..300] + "…";
        Write("INSERT OR REPLACE INTO mail_refused VALUES ($i, $s, $r, $t)", ("$i", refused.ItemId), ("$s", refused.Sender), ("$r", reason), ("$t", refused.RefusedMs));
        Write("DELETE FROM mail_refused WHERE item_id NOT IN (SELECT item_id FROM mail_refused ORDER BY refused_ms DESC LIMIT $n)", ("$n", RefusedMailKept));
    }

    /// <summary>The newest refused mailbox items, newest first.</summary>
    public IReadOnlyList<RefusedMailRow> RefusedMail(int limit)
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = "SELECT item_id, sender, reason, refused_ms FROM mail_refused ORDER BY refused_ms DESC LIMIT $n";
            command.Parameters.AddWithValue("$n", limit);
            using var reader = command.ExecuteReader();
            var rows = new List<RefusedMailRow>();
            while (reader.Read())
            {
                rows.Add(new RefusedMailRow(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3)));
            }

            return rows;
        }
    }

    /// <summary>How many refused mailbox items are remembered.</summary>
    public int RefusedMailCount()
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM mail_refused";
            return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Forgets a mailbox item once delivered.</summary>
    public void RemoveMail(string itemId) => Write("DELETE FROM mail_out WHERE item_id = $i", ("$i", itemId));

    /// <inheritdoc />
    public void Dispose() => _db.Dispose();

    /// <summary>Adds a column a store made by an older version lacks (the daemon and a CLI command may race to add it).</summary>
    private void AddColumnIfMissing(string table, string column, string type)
    {
        if (Scalar<long>($"SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'") > 0)
        {
            return;
        }

        try
        {
            Execute($"ALTER TABLE {table} ADD COLUMN {column} {type}");
        }
        catch (SqliteException ex) when (ex.Message.Contains("duplicate column", StringComparison.OrdinalIgnoreCase))
        {
            // Added by the other process meanwhile.
        }
    }

    private List<OrderRow> QueryOrders(string where, params (string Name, object? Value)[] parameters)
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = "SELECT order_id, role, counterparty, listing_id, title, price, quantity, state, content_id, offer, acceptance, completion, updated_ms, delivery, steps FROM orders " + where;
            Bind(command, parameters);
            using var reader = command.ExecuteReader();
            var rows = new List<OrderRow>();
            while (reader.Read())
            {
                rows.Add(new OrderRow(
                    reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                    (uint)reader.GetInt64(6), reader.GetString(7), reader.GetString(8), (byte[])reader[9],
                    reader.IsDBNull(10) ? null : (byte[])reader[10], reader.IsDBNull(11) ? null : (byte[])reader[11], reader.GetInt64(12), reader.GetString(13),
                    reader.IsDBNull(14) ? null : (byte[])reader[14]));
            }

            return rows;
        }
    }

    private int Write(string sql, params (string Name, object? Value)[] parameters)
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = sql;
            Bind(command, parameters);
            var changed = command.ExecuteNonQuery();
            var previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            previous.TrySetResult();
            return changed;
        }
    }

    private T Scalar<T>(string sql, params (string Name, object? Value)[] parameters)
    {
        lock (_gate)
        {
            using var command = _db.CreateCommand();
            command.CommandText = sql;
            Bind(command, parameters);
            return (T)Convert.ChangeType(command.ExecuteScalar()!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private void Execute(string sql)
    {
        using var command = _db.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static void Bind(SqliteCommand command, (string Name, object? Value)[] parameters)
    {
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }
    }
}
