using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Util;

namespace Hybrid.Index.Search;

/// <summary>
/// The words of one query looked up in the term dictionaries of one reader, each segment's answer
/// kept for the next query. Building a query looks words up again and again (is this word known?
/// which split of it is? then each term's statistics for scoring), and Lucene does each look-up
/// afresh in every segment: a new terms enumerator and a seek per segment and word. Under a
/// trickle of writes an index has several segments, and those look-ups were most of a search's
/// cost. A segment never changes once written (deletes leave its terms and their statistics as
/// they are), so what it answered for a word holds for its whole life; the answers of each segment
/// are kept with it and go when it is merged away.
/// </summary>
internal sealed class TermLookups(IndexReader reader)
{
    /// <summary>Words kept per segment; past that its answers start again (a query mix seldom has more).</summary>
    internal const int MaxWordsPerSegment = 4096;

    private static readonly ConditionalWeakTable<object, SegmentTerms> Segments = new();

    private readonly IndexReaderContext _top = reader.Context;
    private readonly IList<AtomicReaderContext> _leaves = reader.Leaves;
    private readonly Dictionary<(string Field, string Text), TermContext> _contexts = [];

    /// <summary>How many of the segments' listings contain <paramref name="text"/> in <paramref name="field"/> (deleted ones counted, as Lucene counts).</summary>
    public int DocFreq(string field, string text) => Context(field, text).DocFreq;

    /// <summary>A term query for <paramref name="text"/> in <paramref name="field"/> that finds its statistics here instead of looking them up again.</summary>
    public TermQuery Query(string field, string text) => new(new Term(field, text), Context(field, text));

    /// <summary>How many words <paramref name="segment"/>'s kept answers hold now.</summary>
    internal static int KeptFor(AtomicReader segment) => Segments.TryGetValue(segment.CoreCacheKey, out var kept) ? kept.Count : 0;

    private TermContext Context(string field, string text)
    {
        if (_contexts.TryGetValue((field, text), out var known))
        {
            return known;
        }

        var context = new TermContext(_top);
        foreach (var leaf in _leaves)
        {
            var segment = Segments.GetValue(leaf.AtomicReader.CoreCacheKey, _ => new SegmentTerms());
            if (segment.Find(leaf.AtomicReader, field, text) is { } found)
            {
                context.Register(found.State, leaf.Ord, found.DocFreq, found.TotalTermFreq);
            }
        }

        _contexts[(field, text)] = context;
        return context;
    }

    private sealed record Found(TermState State, int DocFreq, long TotalTermFreq);

    /// <summary>One segment's answers: the term's state and statistics, or null where the segment lacks it.</summary>
    private sealed class SegmentTerms
    {
        private readonly ConcurrentDictionary<(string Field, string Text), Found?> _words = new();
        private int _count;

        public int Count => _words.Count;

        public Found? Find(AtomicReader segment, string field, string text)
        {
            if (_words.TryGetValue((field, text), out var known))
            {
                return known;
            }

            Found? found = null;
            var terms = segment.GetTerms(field)?.GetEnumerator();
            if (terms is not null && terms.SeekExact(new BytesRef(text)))
            {
                // The state is a copy of the enumerator's, and searches only read it (seeking their own enumerator to it).
                found = new Found(terms.GetTermState(), terms.DocFreq, terms.TotalTermFreq);
            }

            if (Interlocked.Increment(ref _count) > MaxWordsPerSegment)
            {
                _words.Clear();
                Interlocked.Exchange(ref _count, 0);
            }

            _words[(field, text)] = found;
            return found;
        }
    }
}
