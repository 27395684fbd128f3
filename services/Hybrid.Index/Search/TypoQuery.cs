using System.Collections.Concurrent;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Util;
using Lucene.Net.Util.Automaton;

namespace Hybrid.Index.Search;

/// <summary>
/// Lucene's <see cref="FuzzyQuery"/> (the first letter kept, transpositions as one edit, at most 32
/// words taken), with the Levenshtein automata of a word built once per process instead of once per
/// shard and query. Building them was most of the cost of a misspelled word: every shard of a
/// supernode rebuilt the same automata for the same query. They depend on the word and the edits
/// only, and a compiled automaton is only read once built, so every search may share it.
/// </summary>
internal sealed class TypoQuery(Term term, int maxEdits) : FuzzyQuery(term, maxEdits, KeptLetters, MaxExpansions, transpositions: true)
{
    private const int KeptLetters = 1;
    private const int MaxExpansions = 32;

    /// <summary>Words whose automata are kept; past that the cache starts again (a typo seldom returns after thousands of others).</summary>
    private const int MaxWordsKept = 1024;

    private static readonly ConcurrentDictionary<(string Word, int Edits), CompiledAutomaton[]> Automata = new();

    private static readonly System.Threading.Lock Adding = new();

    /// <summary>How many words' automata are kept now.</summary>
    internal static int WordsKept => Automata.Count;

    protected override TermsEnum GetTermsEnum(Terms terms, AttributeSource atts)
    {
        var key = (Term.Text, MaxEdits);
        var built = atts.AddAttribute<FuzzyTermsEnum.ILevenshteinAutomataAttribute>().Automata;
        if (built.Count == 0 && Automata.TryGetValue(key, out var known))
        {
            // The enumeration builds only the distances its list lacks: given all of them, it builds none.
            foreach (var automaton in known)
            {
                built.Add(automaton);
            }

            return base.GetTermsEnum(terms, atts);
        }

        var enumeration = base.GetTermsEnum(terms, atts);
        if (built.Count > MaxEdits && !Automata.ContainsKey(key))
        {
            // Only after building (rare, and far dearer than the lock), so never more than the bound.
            lock (Adding)
            {
                if (Automata.Count >= MaxWordsKept)
                {
                    Automata.Clear();
                }

                Automata.TryAdd(key, [.. built]);
            }
        }

        return enumeration;
    }
}
