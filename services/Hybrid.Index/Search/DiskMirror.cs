using Lucene.Net.Index;
using Lucene.Net.Store;

namespace Hybrid.Index.Search;

/// <summary>
/// Keeps a copy on disk of an index that is searched in memory. Lucene.Net searches a
/// <see cref="RAMDirectory"/> markedly faster than a memory-mapped one (a third more searches a
/// second in the <c>search</c> scenario), so the index lives in memory and each commit is copied
/// to a folder: files Lucene wrote since the last copy (segment files never change once written),
/// then the commit's <c>segments_N</c> last, then the files no commit on disk needs are deleted. A
/// file is written under a temporary name, flushed to the disk and then renamed, so a crash leaves
/// the previous commit whole. The folder is locked for as long as the mirror is open: a second
/// process on the same data directory keeps its index in memory only.
/// </summary>
internal sealed class DiskMirror : IDisposable
{
    private const string LockName = "write.lock";
    private const string PartSuffix = ".part";
    private readonly string _path;
    private readonly FSDirectory _disk;
    private readonly Lucene.Net.Store.Lock _lock;
    private readonly HashSet<string> _onDisk = new(StringComparer.Ordinal);

    private DiskMirror(string path, FSDirectory disk, Lucene.Net.Store.Lock held)
    {
        _path = path;
        _disk = disk;
        _lock = held;
    }

    /// <summary>
    /// Locks <paramref name="path"/> and loads its last commit into <paramref name="memory"/> (null
    /// when there is none, or it cannot be read: the folder is then emptied). Null mirror when
    /// another process holds the folder.
    /// </summary>
    public static DiskMirror? Open(string path, out RAMDirectory? memory, out IndexOrigin origin)
    {
        System.IO.Directory.CreateDirectory(path);
        var disk = FSDirectory.Open(path);
        var held = disk.MakeLock(LockName);
        bool obtained;
        try
        {
            obtained = held.Obtain();
        }
        catch (LockObtainFailedException)
        {
            obtained = false;
        }

        if (!obtained)
        {
            held.Dispose();
            disk.Dispose();
            memory = null;
            origin = IndexOrigin.Held;
            return null;
        }

        var mirror = new DiskMirror(path, disk, held);
        memory = mirror.Load(out origin);
        return mirror;
    }

    private RAMDirectory? Load(out IndexOrigin origin)
    {
        origin = IndexOrigin.Empty;
        RAMDirectory? memory = null;
        // Parts of a copy a crash interrupted go first: Lucene would take "segments_N.part" for a commit point.
        foreach (var part in System.IO.Directory.EnumerateFiles(_path, "*" + PartSuffix))
        {
            File.Delete(part);
        }

        try
        {
            if (DirectoryReader.IndexExists(_disk))
            {
                var commit = new SegmentInfos();
                commit.Read(_disk);
                memory = new RAMDirectory();
                foreach (var file in commit.GetFiles(_disk, includeSegmentsFile: true))
                {
                    _disk.Copy(memory, file, file, IOContext.READ_ONCE);
                    _onDisk.Add(file);
                }

                origin = IndexOrigin.Disk;
            }
        }
        catch (Exception e) when (IsUnreadable(e))
        {
            // A commit that cannot be read (a disk fault, a format of another version) is thrown
            // away: the store holds every listing, and the shard indexes them again.
            memory?.Dispose();
            memory = null;
            _onDisk.Clear();
            origin = IndexOrigin.Unreadable;
        }

        // Whatever the last commit does not need: older commits' files, parts of an interrupted copy.
        foreach (var file in System.IO.Directory.EnumerateFiles(_path))
        {
            var name = Path.GetFileName(file);
            if (name != LockName && !_onDisk.Contains(name))
            {
                File.Delete(file);
            }
        }

        return memory;
    }

    /// <summary>Throws away what is on disk: the index in memory starts afresh (its file names may be those of the old commit).</summary>
    public void Forget()
    {
        foreach (var file in _onDisk)
        {
            File.Delete(Path.Combine(_path, file));
        }

        _onDisk.Clear();
    }

    /// <summary>Copies <paramref name="commit"/> (held by the caller until this returns) from <paramref name="memory"/> to disk.</summary>
    public void Save(IndexCommit commit, Lucene.Net.Store.Directory memory)
    {
        var files = commit.FileNames.ToHashSet(StringComparer.Ordinal);
        var segmentsFile = commit.SegmentsFileName;
        foreach (var file in files.Where(f => f != segmentsFile && !_onDisk.Contains(f)))
        {
            CopyDurably(memory, file);
        }

        // The commit point last: until it is in place, the previous one is what a restart reads.
        CopyDurably(memory, segmentsFile);
        foreach (var stale in _onDisk.Where(f => !files.Contains(f)).ToList())
        {
            File.Delete(Path.Combine(_path, stale));
            _onDisk.Remove(stale);
        }
    }

    private void CopyDurably(Lucene.Net.Store.Directory memory, string file)
    {
        var target = Path.Combine(_path, file);
        var part = target + PartSuffix;
        using (var input = memory.OpenInput(file, IOContext.READ_ONCE))
        using (var output = new FileStream(part, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            var buffer = new byte[1 << 16];
            for (var left = input.Length; left > 0;)
            {
                var chunk = (int)Math.Min(buffer.Length, left);
                input.ReadBytes(buffer, 0, chunk);
                output.Write(buffer, 0, chunk);
                left -= chunk;
            }

            output.Flush(flushToDisk: true);
        }

        File.Move(part, target, overwrite: true);
        _onDisk.Add(file);
    }

    public void Dispose()
    {
        _lock.Dispose();
        _disk.Dispose();
    }

    /// <summary>
    /// Whether <paramref name="exception"/> says a commit on disk cannot be read (a disk fault, a
    /// format of another version, a damaged file): such a copy is thrown away, never trusted.
    /// </summary>
    public static bool IsUnreadable(Exception exception) =>
        exception is IOException or CorruptIndexException or IndexFormatTooOldException or IndexFormatTooNewException or FormatException or InvalidOperationException;
}
