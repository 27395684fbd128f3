using System.Collections.Concurrent;
using Hybrid.Index.Listings;

namespace Hybrid.Index.Search;

/// <summary>
/// The search shards active on this supernode, which <see cref="ShardedSearch"/> searches in place.
/// A grain call to a shard on the same silo costs a message, a copy of its hits and two more waits
/// for the thread pool (at a million listings under load, 0.3 – 0.75 ms of Orleans' own and 0.2 – 1 ms
/// of waiting for a thread per call, beside 1.5 ms of Lucene). A shard joins once it has rebuilt its
/// index and leaves before disposing it; a search that meets a shard while it leaves asks the grain.
/// One per silo: a shard of another silo is only ever reached through a grain call.
/// </summary>
public sealed class LocalShards
{
    private readonly ConcurrentDictionary<int, Searcher> _shards = new();

    /// <summary>Searches one shard's index: its best <c>take</c> hits for the query, as the shard's grain would answer.</summary>
    /// <exception cref="ObjectDisposedException">The shard has left this supernode since it was looked up.</exception>
    public delegate ShardHits Searcher(SearchQuery query, int take);

    /// <summary>Shards searchable here now.</summary>
    public int Count => _shards.Count;

    /// <summary>The searcher of <paramref name="shard"/> when the shard is active here.</summary>
    public bool TryGet(int shard, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Searcher? searcher) => _shards.TryGetValue(shard, out searcher);

    /// <summary>Makes <paramref name="shard"/> searchable here through <paramref name="searcher"/> (a newer activation replaces an older one).</summary>
    internal void Join(int shard, Searcher searcher) => _shards[shard] = searcher;

    /// <summary>Takes <paramref name="shard"/> out, unless a newer activation has joined since <paramref name="searcher"/> did.</summary>
    internal void Leave(int shard, Searcher searcher) => _shards.TryRemove(new KeyValuePair<int, Searcher>(shard, searcher));
}
