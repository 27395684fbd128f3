using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Hybrid.Index.Listings;
using Hybrid.Protocol.V1;
using Lucene.Net.Analysis;
using Lucene.Net.Analysis.Core;
using Lucene.Net.Analysis.En;
using Lucene.Net.Analysis.Miscellaneous;
using Lucene.Net.Analysis.Standard;
using Lucene.Net.Analysis.TokenAttributes;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;

namespace Hybrid.Index.Search;

/// <summary>
/// The Lucene index of one search shard, searched in memory and, optionally, copied to a folder on
/// disk at each commit (<see cref="DiskMirror"/>). Text is folded to
/// ASCII, lower-cased and stemmed (English) and scored with BM25; a separate unstemmed field serves
/// type-ahead prefixes. Filters are constant-score clauses (they add nothing to the score); price
/// and dates use doc values. Writes come from one caller at a time; searches may run concurrently.
/// On disk the index is a cache of the listing store, never the record: <see cref="IndexedVersions"/>
/// tells what it held at its last commit, and the shard brings it in line with the store.
/// </summary>
public sealed partial class ListingIndex : IDisposable
{
    private const LuceneVersion Version = LuceneVersion.LUCENE_48;
    private const string IdField = "id";
    private const string IdSortField = "id_sort";
    private const string TitleField = "title";
    private const string DescriptionField = "description";
    private const string WordsField = "words";
    private const string SellerSortField = "seller_dv";
    private const string CategoryField = "category";
    private const string TagField = "tag";
    private const string CountryField = "country";
    private const string RegionField = "region";
    private const string GeohashField = "geohash";
    private const string CurrencyField = "currency";
    private const string PriceField = "price";
    private const string LatitudeField = "lat";
    private const string LongitudeField = "lon";
    private const string CreatedField = "created";
    private const string ExpiresField = "expires";
    private const string VersionField = "version";
    private const float TitleBoost = 2f;
    private const float SynonymBoost = 0.8f;
    private const float PartsBoost = 0.9f;
    private const float FuzzyBoost = 0.3f;
    private const int MaxSuggestedWords = 8;

    private static readonly Similarity Bm25 = new BM25Similarity();
    private readonly Lucene.Net.Store.Directory _directory;
    private readonly SnapshotDeletionPolicy _snapshots = new(new KeepOnlyLastCommitDeletionPolicy());
    private readonly System.Threading.Lock _committing = new();
    private DiskMirror? _mirror;
    private readonly Analyzer _stemmed = new TextAnalyzer(stem: true);
    private readonly Analyzer _plain = new TextAnalyzer(stem: false);
    private readonly IndexWriter _writer;
    private readonly SearcherManager _searchers;
    private readonly Synonyms _synonyms;
    // Writes counted as they finish, and how many of them searches are known to see: a search waits
    // for a refresh that began after it did, never only for one that another search started earlier.
    private long _written;
    private long _visible;
    // When the last refresh began (a Stopwatch timestamp; at first an hour before the index opened,
    // so its first write is visible to the next search whatever the interval).
    private long _refreshedAt = System.Diagnostics.Stopwatch.GetTimestamp() - (System.Diagnostics.Stopwatch.Frequency * 3600);

    /// <summary>
    /// An index in memory, or, with <paramref name="path"/>, in that directory: what it held at its
    /// last commit there is opened again. A directory another process holds, or one that cannot be
    /// read as an index, is not used: the index starts empty (in memory, or afresh in the directory).
    /// Query words also match their <paramref name="synonyms"/> (default: the shipped list).
    /// </summary>
    public ListingIndex(Synonyms? synonyms = null, string? path = null)
    {
        _synonyms = synonyms ?? Synonyms.Default;
        (_directory, _writer, OpenedFrom) = Open(path);
        _searchers = new SearcherManager(_writer, applyAllDeletes: true, new Bm25SearcherFactory());
        OpenIndexes.TryAdd(this, 0);
        _ = IndexMeters.SearchSegments;
        _ = IndexMeters.SearchDeleted;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<ListingIndex, byte> OpenIndexes = new();

    /// <summary>Segments of every index open in this process, as searches now see them.</summary>
    internal static int SegmentsOpenHere() => OpenIndexes.Keys.Sum(index => index.Segments());

    /// <summary>Deleted documents still held in the segments of every index open in this process (each query still walks their postings).</summary>
    internal static long DeletedOpenHere() => OpenIndexes.Keys.Sum(index => (long)index.Seen(reader => reader.MaxDoc - reader.NumDocs));

    /// <summary>Segments searches now see.</summary>
    public int Segments() => Seen(reader => reader.Leaves.Count);

    /// <summary><paramref name="read"/> of the reader searches now see; 0 once the index is closed.</summary>
    private int Seen(Func<IndexReader, int> read)
    {
        try
        {
            return WithSearcher(searcher => read(searcher.IndexReader));
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
    }

    /// <summary><paramref name="read"/> on the searcher searches now use, held for its duration.</summary>
    private T WithSearcher<T>(Func<IndexSearcher, T> read)
    {
        var searcher = _searchers.Acquire();
        try
        {
            return read(searcher);
        }
        finally
        {
            _searchers.Release(searcher);
        }
    }

    /// <summary>What the index was opened from: nothing (empty), or a commit on disk it holds again.</summary>
    public IndexOrigin OpenedFrom { get; }

    /// <summary>Whether changes are kept on disk at <see cref="Commit"/> (false: in memory only).</summary>
    public bool Persistent => _mirror is not null;

    private IndexWriter NewWriter(Lucene.Net.Store.Directory directory, OpenMode mode) =>
        new(directory, new IndexWriterConfig(Version, new PerFieldAnalyzerWrapper(_stemmed, new Dictionary<string, Analyzer> { [WordsField] = _plain }))
        {
            Similarity = Bm25,
            OpenMode = mode,
            RAMBufferSizeMB = 64,
            // A commit being copied to disk keeps its files until the copy is done.
            IndexDeletionPolicy = _snapshots,
            // Each file of a segment on its own: a compound file is read through a copying buffer
            // (every doc-value look-up a seek and a refill), and in memory it saves nothing.
            UseCompoundFile = false,
            MergePolicy = new ShardMergePolicy(),
        });

    private (Lucene.Net.Store.Directory, IndexWriter, IndexOrigin) Open(string? path)
    {
        if (path is null)
        {
            var memory = new RAMDirectory();
            return (memory, NewWriter(memory, OpenMode.CREATE), IndexOrigin.Empty);
        }

        _mirror = DiskMirror.Open(path, out var loaded, out var origin);
        if (loaded is not null)
        {
            try
            {
                return (loaded, NewWriter(loaded, OpenMode.APPEND), origin);
            }
            catch (Exception e) when (DiskMirror.IsUnreadable(e))
            {
                loaded.Dispose();
                _mirror!.Forget();
                origin = IndexOrigin.Unreadable;
            }
        }

        var fresh = new RAMDirectory();
        return (fresh, NewWriter(fresh, OpenMode.CREATE), origin);
    }

    /// <summary>
    /// Every listing the index holds, with the version it was indexed at (-1: held twice, so it must
    /// be replaced). What a shard compares with its store when it opens an index kept on disk.
    /// </summary>
    public Dictionary<string, long> IndexedVersions()
    {
        var held = new Dictionary<string, long>(StringComparer.Ordinal);
        ForEachLive(VersionField, _ => true, (id, version) => held[id] = held.ContainsKey(id) ? -1 : version);
        return held;
    }

    /// <summary>
    /// For every searchable listing whose <paramref name="field"/> doc value is <paramref name="wanted"/>,
    /// its id and that value (-1 where the listing has none). One pass over the doc values; an id is
    /// read only for the listings wanted.
    /// </summary>
    private void ForEachLive(string field, Func<long, bool> wanted, Action<string, long> visit)
    {
        Refresh();
        var searcher = _searchers.Acquire();
        try
        {
            var scratch = new BytesRef();
            foreach (var leaf in searcher.IndexReader.Leaves)
            {
                var reader = leaf.AtomicReader;
                var ids = reader.GetSortedDocValues(IdSortField);
                var values = reader.GetNumericDocValues(field);
                var live = reader.LiveDocs;
                for (var doc = 0; ids is not null && doc < reader.MaxDoc; doc++)
                {
                    var value = values?.Get(doc) ?? -1;
                    if ((live is null || live.Get(doc)) && wanted(value))
                    {
                        ids.Get(doc, scratch);
                        visit(scratch.Utf8ToString(), value);
                    }
                }
            }
        }
        finally
        {
            _searchers.Release(searcher);
        }
    }

    /// <summary>Whether changes were made since the last <see cref="Commit"/> (always false in memory).</summary>
    public bool HasUncommittedChanges => Persistent && _writer.HasUncommittedChanges();

    /// <summary>Makes every change so far durable on disk (nothing to do in memory). Safe beside writes and searches.</summary>
    public void Commit()
    {
        if (_mirror is null)
        {
            return;
        }

        lock (_committing)
        {
            _writer.Commit();
            var commit = _snapshots.Snapshot();
            try
            {
                _mirror.Save(commit, _directory);
            }
            finally
            {
                _snapshots.Release(commit);
                _writer.DeleteUnusedFiles();
            }
        }
    }

    /// <summary>Small segments there must be before <see cref="CompactSmallSegments"/> merges them.</summary>
    public const int SmallSegmentsToCompact = 3;

    /// <summary>
    /// Folds the index's small segments into one when there are at least <see cref="SmallSegmentsToCompact"/>,
    /// leaving its large ones (each a fifth of the listings or more, so at most five) as they are;
    /// true if it merged. Every query pays per segment (term look-ups, typo automata intersected with
    /// each segment's terms), and Lucene's merge policy leaves up to ten segments a tier, many of them
    /// small after a stream of refreshed writes. Meant for when a shard has gone quiet: the work is
    /// bounded by the small segments' size, and a write or two between quiet spells merges nothing.
    /// </summary>
    public bool CompactSmallSegments()
    {
        var (segments, large) = WithSearcher(searcher =>
        {
            var leaves = searcher.IndexReader.Leaves;
            var total = Math.Max(1, searcher.IndexReader.MaxDoc);
            return (leaves.Count, leaves.Count(leaf => ShardMergePolicy.IsLarge(leaf.Reader.MaxDoc, total)));
        });
        if (segments - large < SmallSegmentsToCompact)
        {
            return false;
        }

        _writer.ForceMerge(large + 1);
        _searchers.MaybeRefreshBlocking();
        return true;
    }

    /// <summary>
    /// Whether query words also match synonyms, word parts, joined neighbours and typos (the
    /// default); off, every word must match as written (stemmed). For measuring what forgiving costs.
    /// </summary>
    public bool Forgiving { get; set; } = true;

    /// <summary>Number of listings searchable (after the pending changes are made visible).</summary>
    public int Count
    {
        get
        {
            Refresh();
            return WithSearcher(searcher => searcher.IndexReader.NumDocs);
        }
    }

    /// <summary>Adds or replaces a listing (by id).</summary>
    public void Upsert(StoredListing stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        _writer.UpdateDocument(new Term(IdField, stored.ListingId), Document(stored));
        Interlocked.Increment(ref _written);
    }

    /// <summary>
    /// Adds a listing the index does not hold yet (a rebuild, each listing once): no delete by id
    /// is buffered beside it, which makes a rebuild of a large shard markedly faster.
    /// </summary>
    public void Add(StoredListing stored)
    {
        ArgumentNullException.ThrowIfNull(stored);
        _writer.AddDocument(Document(stored));
        Interlocked.Increment(ref _written);
    }

    private static Document Document(StoredListing stored)
    {
        var envelope = SignedEnvelope.Parser.ParseFrom(stored.Envelope);
        var payload = EnvelopePayload.Parser.ParseFrom(envelope.Payload);
        var listing = Listing.Parser.ParseFrom(payload.Body);
        var document = new Document
        {
            new StringField(IdField, stored.ListingId, Field.Store.NO),
            new SortedDocValuesField(IdSortField, new BytesRef(stored.ListingId)),
            new TextField(TitleField, listing.Title, Field.Store.NO) { Boost = 1f },
            new TextField(DescriptionField, listing.Description, Field.Store.NO),
            new TextField(WordsField, listing.Title + "\n" + listing.Description, Field.Store.NO),
            new SortedDocValuesField(SellerSortField, new BytesRef(stored.Seller)),
            new StringField(CategoryField, listing.Category, Field.Store.NO),
            new SortedDocValuesField(CategoryField, new BytesRef(listing.Category)),
            new StringField(CurrencyField, listing.Price.Currency, Field.Store.NO),
            new SortedDocValuesField(CurrencyField, new BytesRef(listing.Price.Currency)),
            new NumericDocValuesField(PriceField, Hybrid.Protocol.Listings.ListingRules.ToMicros(listing.Price)),
            new NumericDocValuesField(CreatedField, listing.CreatedMs),
            new NumericDocValuesField(ExpiresField, stored.ExpiresMs),
            new NumericDocValuesField(VersionField, (long)stored.Version),
        };
        foreach (var tag in listing.Tags)
        {
            document.Add(new StringField(TagField, tag.ToLowerInvariant(), Field.Store.NO));
        }

        if (listing.Location is { } location)
        {
            document.Add(new StringField(CountryField, location.Country, Field.Store.NO));
            document.Add(new SortedDocValuesField(CountryField, new BytesRef(location.Country)));
            document.Add(new StringField(RegionField, Fold(location.Region), Field.Store.NO));
            document.Add(new StringField(GeohashField, location.Geohash, Field.Store.NO));
            if (Hybrid.Protocol.Listings.Geo.Centre(location.Geohash) is var (latitude, longitude))
            {
                document.Add(new DoubleDocValuesField(LatitudeField, latitude));
                document.Add(new DoubleDocValuesField(LongitudeField, longitude));
            }
        }

        return document;
    }

    /// <summary>Removes a listing from search.</summary>
    public void Remove(string listingId)
    {
        _writer.DeleteDocuments(new Term(IdField, listingId));
        Interlocked.Increment(ref _written);
    }

    /// <summary>Removes every listing whose expiry has passed; returns their ids.</summary>
    public IReadOnlyList<string> RemoveExpired(long nowMs)
    {
        // One pass over the expiry doc values: usually nothing has expired, and nothing is allocated
        // per listing (a sorted search sized to the whole shard stalled its searches for a second at 1M).
        var expired = new List<string>();
        ForEachLive(ExpiresField, expires => expires >= 0 && expires <= nowMs, (id, _) => expired.Add(id));
        expired.Sort(StringComparer.Ordinal);
        foreach (var id in expired)
        {
            Remove(id);
        }

        return expired;
    }

    /// <summary>
    /// How stale a search may be: zero (the default), each search sees every change made
    /// before it began; above zero, every change made at least this long before it began, and a
    /// search refreshes only when the last refresh began that long ago (see <see cref="SearchOptions.RefreshInterval"/>).
    /// </summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.Zero;

    /// <summary>Makes every change so far visible to searches.</summary>
    public void Refresh()
    {
        var target = Interlocked.Read(ref _written);
        if (Interlocked.Read(ref _visible) >= target)
        {
            return;
        }

        Volatile.Write(ref _refreshedAt, System.Diagnostics.Stopwatch.GetTimestamp());

        // Waits for a refresh under way, then refreshes again if needed: the reader it leaves holds
        // every write counted in target.
        _searchers.MaybeRefreshBlocking();
        var seen = Interlocked.Read(ref _visible);
        while (seen < target && Interlocked.CompareExchange(ref _visible, target, seen) is var was && was != seen)
        {
            seen = was;
        }
    }

    /// <summary>
    /// The best <paramref name="take"/> listings for <paramref name="query"/> among those not
    /// expired at <paramref name="nowMs"/>, in the query's order (ties broken by listing id).
    /// Reads nothing but the sort values, so a shard's share of a query stays cheap. For relevance,
    /// <paramref name="sellerWeight"/> (by seller id) scales each hit's score — the reputation hook.
    /// Safe beside other searches and writes.
    /// </summary>
    public ShardHits Search(SearchQuery query, int take, long nowMs, Func<string, double>? sellerWeight = null, Func<string, int>? trustScore = null)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (RefreshInterval <= TimeSpan.Zero || System.Diagnostics.Stopwatch.GetElapsedTime(Volatile.Read(ref _refreshedAt)) >= RefreshInterval)
        {
            Refresh();
        }

        return WithSearcher(searcher => Search(searcher, query, take, nowMs, sellerWeight, trustScore));
    }

    private ShardHits Search(IndexSearcher searcher, SearchQuery query, int take, long nowMs, Func<string, double>? sellerWeight, Func<string, int>? trustScore)
    {
        var lucene = BuildQuery(new TermLookups(searcher.IndexReader), query, nowMs);
        if (query.MinReputation > 0)
        {
            var score = trustScore ?? (_ => 0);
            lucene = Checked(lucene, new SellerFilter(seller => score(seller) >= query.MinReputation));
        }

        var byId = new SortField(IdSortField, SortFieldType.STRING);
        var sort = query.Order switch
        {
            SearchOrder.PriceAscending => new Sort(new SortField(PriceField, SortFieldType.INT64), byId),
            SearchOrder.PriceDescending => new Sort(new SortField(PriceField, SortFieldType.INT64, true), byId),
            SearchOrder.Newest => new Sort(new SortField(CreatedField, SortFieldType.INT64, true), byId),
            SearchOrder.Distance when query.Near is { } near => new Sort(new SortField(LatitudeField, new DistanceComparerSource(near.Latitude, near.Longitude)), byId),
            _ => new Sort(SortField.FIELD_SCORE, byId),
        };
        var relevance = query.Order == SearchOrder.Relevance;
        {
            TopDocs top;
            FacetCounter? facets = null;
            if (query.Facets)
            {
                // One pass over the matches feeds both the top hits and the counts.
                var collector = TopFieldCollector.Create(sort, Math.Max(1, take), fillFields: true, trackDocScores: relevance, trackMaxScore: false, docsScoredInOrder: false);
                facets = new FacetCounter(query.Currency);
                searcher.Search(lucene, null, MultiCollector.Wrap(collector, facets));
                top = collector.GetTopDocs();
            }
            else
            {
                top = searcher.Search(lucene, null, Math.Max(1, take), sort, doDocScores: relevance, doMaxScore: false);
            }

            var hits = new List<ShardHit>(top.ScoreDocs.Length);
            foreach (FieldDoc doc in top.ScoreDocs)
            {
                var id = ((BytesRef)doc.Fields[1]).Utf8ToString();
                var version = VersionOf(searcher.IndexReader, doc.Doc);
                if (relevance)
                {
                    var score = float.IsNaN(doc.Score) ? 0f : doc.Score;
                    hits.Add(new ShardHit(id, sellerWeight is null ? score : (float)(score * sellerWeight(SellerOf(searcher.IndexReader, doc.Doc))), 0, version));
                }
                else
                {
                    // Distances merge as whole metres; a listing without a location sorts last.
                    var key = doc.Fields[0] is J2N.Numerics.Double km ? (km.ToDouble() >= double.MaxValue ? long.MaxValue : (long)(km.ToDouble() * 1000)) : Convert.ToInt64(doc.Fields[0], System.Globalization.CultureInfo.InvariantCulture);
                    hits.Add(new ShardHit(id, 0f, key, version));
                }
            }

            if (relevance && sellerWeight is not null)
            {
                hits.Sort(ShardedSearch.Comparer(SearchOrder.Relevance));
            }

            return new ShardHits([.. hits], top.TotalHits, facets?.Result());
        }
    }

    /// <summary>The version indexed for the listing at <paramref name="doc"/> (from its doc values; 0 if none).</summary>
    private static ulong VersionOf(IndexReader reader, int doc)
    {
        var leaves = reader.Leaves;
        var leaf = leaves[ReaderUtil.SubIndex(doc, leaves)];
        var versions = leaf.AtomicReader.GetNumericDocValues(VersionField);
        return versions is null ? 0 : (ulong)versions.Get(doc - leaf.DocBase);
    }

    /// <summary>The seller of the listing at <paramref name="doc"/> (from its doc values).</summary>
    private static string SellerOf(IndexReader reader, int doc)
    {
        var leaves = reader.Leaves;
        var leaf = leaves[ReaderUtil.SubIndex(doc, leaves)];
        var sellers = leaf.AtomicReader.GetSortedDocValues(SellerSortField);
        if (sellers is null)
        {
            return string.Empty;
        }

        var seller = new BytesRef();
        sellers.Get(doc - leaf.DocBase, seller);
        return seller.Utf8ToString();
    }

    /// <summary>
    /// For each word of <paramref name="text"/> (outside quotes) that no listing here contains as
    /// written, the closest word that listings do contain: one edit away for words of five letters
    /// or more, two from nine (as for typos in search), never for numbers and model codes.
    /// </summary>
    public ImmutableArray<WordSuggestion> Suggest(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Refresh();
        var searcher = _searchers.Acquire();
        try
        {
            var reader = searcher.IndexReader;
            var terms = MultiFields.GetTerms(reader, WordsField);
            var lookups = new TermLookups(reader);
            var found = ImmutableArray.CreateBuilder<WordSuggestion>();
            // The first words only: each unknown one costs a walk of the term dictionary.
            foreach (var word in LooseWords(text).Distinct(StringComparer.OrdinalIgnoreCase).Take(MaxSuggestedWords))
            {
                var plain = Analyze(_plain, WordsField, word);
                if (terms is null || TypoEdits(lookups, word, plain) is not { } maxEdits)
                {
                    continue;
                }

                // Lucene's own enumeration of the words within those edits; its boost is 1 - edits / length.
                var candidates = new FuzzyTermsEnum(terms, new Lucene.Net.Util.AttributeSource(), new Term(WordsField, plain[0]), maxEdits, prefixLength: 1, transpositions: true);
                var similarity = candidates.Attributes.AddAttribute<IBoostAttribute>();
                WordSuggestion? best = null;
                while (candidates.MoveNext())
                {
                    var suggestion = new WordSuggestion(plain[0], candidates.Term.Utf8ToString(), similarity.Boost, candidates.DocFreq);
                    if (best is null || suggestion.Similarity > best.Similarity || (suggestion.Similarity == best.Similarity && suggestion.DocFreq > best.DocFreq))
                    {
                        best = suggestion;
                    }
                }

                if (best is not null)
                {
                    found.Add(best);
                }
            }

            return found.ToImmutable();
        }
        finally
        {
            _searchers.Release(searcher);
        }
    }

    /// <summary>Counts the matches per category, country and currency, and their prices in one currency, from doc values.</summary>
    private sealed class FacetCounter(string? currency) : ICollector
    {
        private readonly Dictionary<string, long> _categories = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> _countries = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> _currencies = new(StringComparer.Ordinal);
        private readonly long[] _prices = new long[FacetCounts.PriceEdgesMicros.Length];
        private readonly BytesRef _scratch = new();
        private Segment _category;
        private Segment _country;
        private Segment _currency;
        private NumericDocValues? _price;
        private int _currencyOrd = -1;

        public bool AcceptsDocsOutOfOrder => true;

        public void SetScorer(Scorer scorer)
        {
        }

        public void SetNextReader(AtomicReaderContext context)
        {
            Flush();
            var reader = context.AtomicReader;
            _category = new Segment(reader.GetSortedDocValues(CategoryField));
            _country = new Segment(reader.GetSortedDocValues(CountryField));
            _currency = new Segment(reader.GetSortedDocValues(CurrencyField));
            _price = reader.GetNumericDocValues(PriceField);
            _currencyOrd = currency is not null && _currency.Values is { } currencies ? currencies.LookupTerm(new BytesRef(currency)) : -1;
        }

        public void Collect(int doc)
        {
            _category.Count(doc);
            _country.Count(doc);
            var currencyOrd = _currency.Count(doc);
            if (_currencyOrd >= 0 && currencyOrd == _currencyOrd && _price is { } price)
            {
                _prices[FacetCounts.BucketOf(price.Get(doc))]++;
            }
        }

        public FacetCounts Result()
        {
            Flush();
            return new FacetCounts(_categories.ToImmutableDictionary(StringComparer.Ordinal), _countries.ToImmutableDictionary(StringComparer.Ordinal), _currencies.ToImmutableDictionary(StringComparer.Ordinal), currency is null ? [] : [.. _prices]);
        }

        private void Flush()
        {
            _category.AddTo(_categories, _scratch);
            _country.AddTo(_countries, _scratch);
            _currency.AddTo(_currencies, _scratch);
        }

        /// <summary>One field's values in one segment, counted by ordinal.</summary>
        private readonly struct Segment(SortedDocValues? values)
        {
            private readonly int[]? _counts = values is null ? null : new int[values.ValueCount];

            public SortedDocValues? Values => values;

            public int Count(int doc)
            {
                if (values is null)
                {
                    return -1;
                }

                var ord = values.GetOrd(doc);
                if (ord >= 0)
                {
                    _counts![ord]++;
                }

                return ord;
            }

            public void AddTo(Dictionary<string, long> totals, BytesRef scratch)
            {
                if (values is null)
                {
                    return;
                }

                for (var ord = 0; ord < _counts!.Length; ord++)
                {
                    if (_counts[ord] > 0)
                    {
                        values.LookupOrd(ord, scratch);
                        var key = scratch.Utf8ToString();
                        totals[key] = totals.GetValueOrDefault(key) + _counts[ord];
                    }
                }

                Array.Clear(_counts);
            }
        }
    }

    public void Dispose()
    {
        OpenIndexes.TryRemove(this, out _);
        try
        {
            Commit();
        }
        catch (IOException)
        {
            // The disk copy stays at its last commit: the store has every change, and a restart indexes them again.
        }

        _searchers.Dispose();
        _writer.Dispose();
        _mirror?.Dispose();
        _directory.Dispose();
        _stemmed.Dispose();
        _plain.Dispose();
    }

    /// <summary>
    /// The words, then the filters. Filters with doc values (expiry, price, currency, category,
    /// country, seller, distance) are checked only on the listings the words match, by random
    /// access; walking the postings of a term most listings share (a currency) alongside the words
    /// cost more than the words themselves. Region and geohash prefix, which narrow a lot and have
    /// no doc values, go through their postings beside the words. Filters never add to the score.
    /// </summary>
    private Query BuildQuery(TermLookups terms, SearchQuery query, long nowMs)
    {
        var root = new BooleanQuery { { BuildTextQuery(terms, query.Text, query.TypeAhead), Occur.MUST } };
        AddTerm(root, RegionField, query.Region is null ? null : Fold(query.Region));
        if (!string.IsNullOrEmpty(query.GeohashPrefix))
        {
            AddFilter(root, new ConstantScoreQuery(new PrefixQuery(new Term(GeohashField, query.GeohashPrefix))));
        }

        Query filtered = Checked(root, FieldCacheRangeFilter.NewInt64Range(ExpiresField, nowMs + 1, null, true, true));
        if (query.MinPriceMicros is not null || query.MaxPriceMicros is not null)
        {
            filtered = Checked(filtered, FieldCacheRangeFilter.NewInt64Range(PriceField, query.MinPriceMicros, query.MaxPriceMicros, true, true));
        }

        foreach (var (field, value) in new[] { (CurrencyField, query.Currency), (CategoryField, query.Category), (CountryField, query.Country), (SellerSortField, query.Seller) })
        {
            if (!string.IsNullOrEmpty(value))
            {
                filtered = Checked(filtered, new FieldCacheTermsFilter(field, value));
            }
        }

        if (query.Near is { WithinKm: > 0 } circle)
        {
            filtered = Checked(filtered, new DistanceFilter(circle));
        }

        return filtered;
    }

    /// <summary><paramref name="query"/>, keeping only the listings <paramref name="filter"/> accepts (checked on each match of the query, by random access).</summary>
    private static FilteredQuery Checked(Query query, Filter filter) => new(query, filter, FilteredQuery.QUERY_FIRST_FILTER_STRATEGY);

    private static void AddTerm(BooleanQuery root, string field, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            AddFilter(root, new ConstantScoreQuery(new TermQuery(new Term(field, value))));
        }
    }

    private static void AddFilter(BooleanQuery root, Query filter)
    {
        filter.Boost = 0f;
        root.Add(filter, Occur.MUST);
    }

    /// <summary>
    /// Every word must match, forgivingly: as written (stemmed, title weighted double), or as one of
    /// its synonyms, or split where letters meet digits ("iphone13" as "iphone 13"), or, for a word
    /// the index does not know, with a typo (one edit for words of five letters or more, two from
    /// nine; never for words with digits, which are numbers and model codes). Two neighbouring words also match as one where the index
    /// knows the joined word ("i phone" as "iphone"). Synonyms and corrections weigh less than the
    /// words as written. "Quoted phrases" match as phrases; while typing, the last word (unless
    /// followed by a space) also matches as a prefix.
    /// </summary>
    private Query BuildTextQuery(TermLookups terms, string text, bool typeAhead)
    {
        var query = new BooleanQuery();
        foreach (Match phrase in PhrasePattern().Matches(text))
        {
            var tokens = Analyze(_stemmed, TitleField, phrase.Groups[1].Value);
            if (tokens.Count > 0)
            {
                query.Add(Either(PhraseOf(TitleField, tokens, TitleBoost), PhraseOf(DescriptionField, tokens, 1f)), Occur.MUST);
            }
        }

        var words = LooseWords(text);
        var typing = typeAhead && words.Length > 0 && !char.IsWhiteSpace(text[^1]) && !text.EndsWith('"');
        // Each word as written (unstemmed), once: its synonyms, parts, typos and joins all start from it.
        var plains = Forgiving ? words.Select(w => Analyze(_plain, WordsField, w)).ToArray() : [];
        for (var i = 0; i < words.Length; i++)
        {
            var isPrefix = typing && i == words.Length - 1;
            if (isPrefix)
            {
                var typed = new BooleanQuery();
                foreach (var stem in Analyze(_stemmed, TitleField, words[i]))
                {
                    typed.Add(Exact(terms, stem), Occur.SHOULD);
                }

                foreach (var plain in Analyze(_plain, WordsField, words[i]).Where(p => p.Length >= 2))
                {
                    typed.Add(new PrefixQuery(new Term(WordsField, plain)), Occur.SHOULD);
                }

                if (typed.Clauses.Count > 0)
                {
                    query.Add(typed, Occur.MUST);
                }

                continue;
            }

            var clause = Forgiving ? Forgive(terms, words[i], plains[i]) : Strict(terms, words[i]);
            // "i phone", "play station": the two words, or the one word the index knows.
            if (Forgiving && i + 1 < words.Length && !(typing && i + 1 == words.Length - 1) && Joined(terms, plains[i], plains[i + 1]) is { } joined)
            {
                var pair = new BooleanQuery();
                var both = new BooleanQuery();
                if (clause is not null)
                {
                    both.Add(clause, Occur.MUST);
                }

                if (Forgive(terms, words[i + 1], plains[i + 1]) is { } second)
                {
                    both.Add(second, Occur.MUST);
                }

                pair.Add(both, Occur.SHOULD);
                pair.Add(AllOf(terms, Analyze(_stemmed, TitleField, joined), 1f), Occur.SHOULD);
                query.Add(pair, Occur.MUST);
                i++;
                continue;
            }

            if (clause is not null)
            {
                query.Add(clause, Occur.MUST);
            }
        }

        return query.Clauses.Count == 0 ? new MatchAllDocsQuery() : query;
    }

    /// <summary>One query word as written (stemmed); null for a word that analyses to nothing (a stop word).</summary>
    private BooleanQuery? Strict(TermLookups terms, string word)
    {
        var stems = Analyze(_stemmed, TitleField, word);
        return stems.Count == 0 ? null : AllOf(terms, stems, 1f);
    }

    /// <summary>One query word and what else it may match; null for a word that analyses to nothing (a stop word).</summary>
    private BooleanQuery? Forgive(TermLookups terms, string word, List<string> plain)
    {
        var stems = Analyze(_stemmed, TitleField, word);
        if (stems.Count == 0)
        {
            return null;
        }

        var clause = new BooleanQuery { { AllOf(terms, stems, 1f), Occur.SHOULD } };
        foreach (var synonym in plain.SelectMany(_synonyms.Of).Distinct(StringComparer.Ordinal))
        {
            var synonymStems = Analyze(_stemmed, TitleField, synonym);
            if (synonymStems.Count > 0)
            {
                clause.Add(AllOf(terms, synonymStems, SynonymBoost), Occur.SHOULD);
            }
        }

        // Letters and digits in one word: also as its parts ("iphone13" finds "iPhone 13").
        var parts = plain.Count == 1 ? LettersAndDigits().Matches(plain[0]).Select(m => m.Value).ToList() : [];
        if (parts.Count > 1)
        {
            clause.Add(AllOf(terms, parts.SelectMany(p => Analyze(_stemmed, TitleField, p)).ToList(), PartsBoost), Occur.SHOULD);
        }

        // A word the index does not know that is two words it does know ("roadbike", "bookshelves"
        // where listings say "book shelves"): also as those two, at the split both are most used.
        if (plain.Count == 1 && parts.Count <= 1 && Split(terms, plain[0]) is { } split)
        {
            clause.Add(AllOf(terms, [.. Analyze(_stemmed, TitleField, split.First), .. Analyze(_stemmed, TitleField, split.Second)], PartsBoost), Occur.SHOULD);
        }

        // Typos, against the words as written (a stem is often shorter: "folding" is indexed as
        // "fold", one edit from "foldng" only unstemmed).
        if (TypoEdits(terms, word, plain) is { } edits)
        {
            clause.Add(new TypoQuery(new Term(WordsField, plain[0]), edits) { Boost = FuzzyBoost }, Occur.SHOULD);
        }

        return clause;
    }

    /// <summary>
    /// How many edits a typo in <paramref name="word"/> may be corrected by: one for words of five
    /// letters or more, two from nine. Null for a word the index knows as written (taken as meant,
    /// which spares the fuzzy term scan for most queries), for numbers and model codes (taken as
    /// written), and for what analyses to more or less than one word.
    /// </summary>
    private static int? TypoEdits(TermLookups terms, string word, List<string> plain)
    {
        var letters = word.Count(char.IsLetter);
        return plain.Count == 1 && letters >= 5 && !word.Any(char.IsDigit) && terms.DocFreq(WordsField, plain[0]) == 0
            ? (letters >= 9 ? 2 : 1)
            : null;
    }

    /// <summary>The words of a query outside its "quoted phrases".</summary>
    private static string[] LooseWords(string text) =>
        PhrasePattern().Replace(text, " ").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// An unknown word of six letters or more as two words the index knows (each of two letters or
    /// more; "e" + "reader" too, as hyphenated words are indexed in parts), the split whose rarer half
    /// is most used; null when the index knows the word or no split has two known halves.
    /// </summary>
    private static (string First, string Second)? Split(TermLookups terms, string word)
    {
        if (word.Length < 6 || !word.All(char.IsLetter) || terms.DocFreq(WordsField, word) > 0)
        {
            return null;
        }

        (string, string)? best = null;
        var bestFreq = 0;
        for (var at = 1; at <= word.Length - 2; at++)
        {
            var (first, second) = (word[..at], word[at..]);
            if (first.Length < 2 && first != "e")
            {
                continue;
            }

            var freq = Math.Min(terms.DocFreq(WordsField, first), terms.DocFreq(WordsField, second));
            if (freq > bestFreq)
            {
                (best, bestFreq) = ((first, second), freq);
            }
        }

        return best;
    }

    /// <summary>The two words as one, if the index has that word ("i" + "phone" = "iphone").</summary>
    private static string? Joined(TermLookups terms, List<string> a, List<string> b)
    {
        if (a.Count != 1 || b.Count != 1)
        {
            return null;
        }

        var joined = a[0] + b[0];
        return terms.DocFreq(WordsField, joined) > 0 ? joined : null;
    }

    /// <summary>Every stem, in the title or the description.</summary>
    private static BooleanQuery AllOf(TermLookups terms, List<string> stems, float boost)
    {
        if (stems.Count == 1)
        {
            var single = Exact(terms, stems[0]);
            single.Boost = boost;
            return single;
        }

        var all = new BooleanQuery { Boost = boost };
        foreach (var stem in stems)
        {
            all.Add(Exact(terms, stem), Occur.MUST);
        }

        return all;
    }

    private static BooleanQuery Exact(TermLookups terms, string stem) => Either(TermOf(terms, TitleField, stem, TitleBoost), TermOf(terms, DescriptionField, stem, 1f));

    private static BooleanQuery Either(Query a, Query b) => new() { { a, Occur.SHOULD }, { b, Occur.SHOULD } };

    private static TermQuery TermOf(TermLookups terms, string field, string term, float boost)
    {
        var query = terms.Query(field, term);
        query.Boost = boost;
        return query;
    }

    private static PhraseQuery PhraseOf(string field, IReadOnlyList<string> terms, float boost)
    {
        var phrase = new PhraseQuery { Boost = boost };
        foreach (var term in terms)
        {
            phrase.Add(new Term(field, term));
        }

        return phrase;
    }

    private static List<string> Analyze(Analyzer analyzer, string field, string text)
    {
        var tokens = new List<string>();
        using var stream = analyzer.GetTokenStream(field, text);
        var term = stream.AddAttribute<ICharTermAttribute>();
        stream.Reset();
        while (stream.IncrementToken())
        {
            tokens.Add(term.ToString());
        }

        stream.End();
        return tokens;
    }

    private static string Fold(string text)
    {
        var input = text.Trim().ToCharArray();
        var output = new char[input.Length * 4];
        var length = ASCIIFoldingFilter.FoldToASCII(input, 0, output, 0, input.Length);
        return new string(output, 0, length).ToLowerInvariant();
    }

    [GeneratedRegex("\"([^\"]*)\"")]
    private static partial Regex PhrasePattern();

    [GeneratedRegex("[a-z]+|[0-9]+")]
    private static partial Regex LettersAndDigits();

    /// <summary>Standard tokens, folded to ASCII before lower-casing (so "İstanbul" matches "istanbul"), optionally stemmed.</summary>
    private sealed class TextAnalyzer(bool stem) : Analyzer
    {
        protected override TokenStreamComponents CreateComponents(string fieldName, TextReader reader)
        {
            var source = new StandardTokenizer(Version, reader);
            TokenStream result = new EnglishPossessiveFilter(Version, source);
            result = new ASCIIFoldingFilter(result);
            result = new LowerCaseFilter(Version, result);
            if (stem)
            {
                result = new StopFilter(Version, result, EnglishAnalyzer.DefaultStopSet);
                result = new PorterStemFilter(result);
            }

            return new TokenStreamComponents(source, result);
        }
    }

    private sealed class Bm25SearcherFactory : SearcherFactory
    {
        public override IndexSearcher NewSearcher(IndexReader reader) => new(reader) { Similarity = Bm25 };
    }

    /// <summary>The documents of a segment that are not deleted and pass <paramref name="keep"/>.</summary>
    private static FixedBitSet Matching(AtomicReader reader, IBits? acceptDocs, Func<int, bool> keep)
    {
        var matches = new FixedBitSet(reader.MaxDoc);
        for (var doc = 0; doc < reader.MaxDoc; doc++)
        {
            if ((acceptDocs is null || acceptDocs.Get(doc)) && keep(doc))
            {
                matches.Set(doc);
            }
        }

        return matches;
    }

    /// <summary>A listing's distance from a point, from its geohash centre; <see cref="double.MaxValue"/> without a location.</summary>
    private readonly struct Distances(AtomicReader reader, double latitude, double longitude)
    {
        private readonly NumericDocValues? _latitudes = reader.GetNumericDocValues(LatitudeField);
        private readonly NumericDocValues? _longitudes = reader.GetNumericDocValues(LongitudeField);
        private readonly IBits? _located = reader.GetDocsWithField(LatitudeField);

        public double Of(int doc) => _latitudes is null || _longitudes is null || _located is null || !_located.Get(doc)
            ? double.MaxValue
            : Hybrid.Protocol.Listings.Geo.DistanceKm(latitude, longitude, BitConverter.Int64BitsToDouble(_latitudes.Get(doc)), BitConverter.Int64BitsToDouble(_longitudes.Get(doc)));
    }

    /// <summary>Listings within a circle (great-circle distance to their geohash centre).</summary>
    private sealed class DistanceFilter(GeoCircle circle) : Filter
    {
        public override DocIdSet GetDocIdSet(AtomicReaderContext context, IBits acceptDocs)
        {
            var distances = new Distances(context.AtomicReader, circle.Latitude, circle.Longitude);
            return Matching(context.AtomicReader, acceptDocs, doc => distances.Of(doc) <= circle.WithinKm);
        }
    }

    private sealed class DistanceComparerSource(double latitude, double longitude) : FieldComparerSource
    {
        public override FieldComparer NewComparer(string fieldname, int numHits, int sortPos, bool reversed) => new DistanceComparer(numHits, latitude, longitude);
    }

    /// <summary>Nearest first: compares listings by their distance from the query's point.</summary>
    private sealed class DistanceComparer(int numHits, double latitude, double longitude) : FieldComparer<J2N.Numerics.Double>
    {
        private readonly double[] _slots = new double[numHits];
        private Distances _distances;
        private double _bottom;
        private double _top;

        public override J2N.Numerics.Double this[int slot] => J2N.Numerics.Double.GetInstance(_slots[slot]);

        public override int Compare(int slot1, int slot2) => _slots[slot1].CompareTo(_slots[slot2]);

        public override void SetBottom(int slot) => _bottom = _slots[slot];

        public override void SetTopValue(J2N.Numerics.Double value) => _top = value?.ToDouble() ?? double.MaxValue;

        public override int CompareBottom(int doc) => _bottom.CompareTo(_distances.Of(doc));

        public override int CompareTop(int doc) => _top.CompareTo(_distances.Of(doc));

        public override void Copy(int slot, int doc) => _slots[slot] = _distances.Of(doc);

        public override FieldComparer SetNextReader(AtomicReaderContext context)
        {
            _distances = new Distances(context.AtomicReader, latitude, longitude);
            return this;
        }
    }

    /// <summary>Keeps documents whose seller passes a test; each seller is tested once per segment.</summary>
    private sealed class SellerFilter(Func<string, bool> allowed) : Filter
    {
        public override DocIdSet GetDocIdSet(AtomicReaderContext context, IBits acceptDocs)
        {
            var reader = context.AtomicReader;
            var sellers = reader.GetSortedDocValues(SellerSortField);
            if (sellers is null)
            {
                return new FixedBitSet(reader.MaxDoc);
            }

            var verdicts = new sbyte[sellers.ValueCount];
            var term = new BytesRef();
            return Matching(reader, acceptDocs, doc =>
            {
                var ord = sellers.GetOrd(doc);
                if (ord < 0)
                {
                    return false;
                }

                if (verdicts[ord] == 0)
                {
                    sellers.LookupOrd(ord, term);
                    verdicts[ord] = allowed(term.Utf8ToString()) ? (sbyte)1 : (sbyte)-1;
                }

                return verdicts[ord] > 0;
            });
        }
    }
}

/// <summary>What a <see cref="ListingIndex"/> was opened from.</summary>
public enum IndexOrigin
{
    /// <summary>Nothing: a new index.</summary>
    Empty,

    /// <summary>The last commit in its directory on disk.</summary>
    Disk,

    /// <summary>Nothing: the directory is held by another process, so the index is in memory.</summary>
    Held,

    /// <summary>Nothing: the directory held an index that could not be read, now replaced.</summary>
    Unreadable,
}
