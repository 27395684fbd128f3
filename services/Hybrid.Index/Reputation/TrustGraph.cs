namespace Hybrid.Index.Reputation;

/// <summary>The result of one global trust computation.</summary>
/// <param name="Trust">Each peer's share of the network's trust (sums to 1).</param>
/// <param name="Iterations">Power iterations run.</param>
/// <param name="Residual">L1 change of the last iteration.</param>
public sealed record TrustVector(IReadOnlyDictionary<string, double> Trust, int Iterations, double Residual)
{
    /// <summary>The largest trust of any peer (for 0-100 scores).</summary>
    public double Max { get; } = Trust.Count == 0 ? 0 : Trust.Values.Max();

    /// <summary>Trust relative to the most trusted peer, 0-100.</summary>
    public int ScoreOf(string peer) => Max <= 0 || !Trust.TryGetValue(peer, out var t) ? 0 : (int)Math.Round(100 * t / Max);
}

/// <summary>
/// EigenTrust over the receipt graph. An edge i → j carries what i's reviews of j (each backed by a
/// real order) add up to: satisfaction (-1..1 from the stars) times a weight that grows with the
/// order's value. Local trust c_ij is i's positive opinion of j normalised over i's opinions; global
/// trust is the fixed point of t = (1 - a) Cᵀ t + a p, where p spreads over the operators'
/// pre-trusted peers. Trust only enters the graph at pre-trusted peers and flows along real trades
/// from them, so a ring of identities that only trade among themselves gets almost none however
/// they rate each other.
/// </summary>
public sealed class TrustGraph
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly List<string> _peers = [];
    private readonly List<Dictionary<int, double>> _out = [];

    /// <summary>Peers in the graph.</summary>
    public int PeerCount => _peers.Count;

    /// <summary>Distinct (from, to) pairs with an opinion.</summary>
    public int EdgeCount { get; private set; }

    /// <summary>The weight one review contributes: satisfaction (stars 1..5 → -1..1) times the order's value weight.</summary>
    public static double Contribution(uint stars, double orderValue) => (((double)stars - 3) / 2) * (1 + Math.Log(1 + Math.Max(0, orderValue)));

    /// <summary>Adds <paramref name="delta"/> to what <paramref name="from"/> thinks of <paramref name="to"/>.</summary>
    public void Add(string from, string to, double delta)
    {
        var i = Intern(from);
        var j = Intern(to);
        var row = _out[i];
        if (!row.TryGetValue(j, out var old))
        {
            EdgeCount++;
        }

        row[j] = old + delta;
    }

    /// <summary>Every edge, for persisting.</summary>
    public IEnumerable<(string From, string To, double Weight)> Edges()
    {
        for (var i = 0; i < _out.Count; i++)
        {
            foreach (var (j, w) in _out[i])
            {
                yield return (_peers[i], _peers[j], w);
            }
        }
    }

    /// <summary>
    /// Runs the power iteration. <paramref name="previous"/> (the last result) is the starting point
    /// when given: after a few new reviews the fixed point moves little, so few iterations are needed.
    /// </summary>
    public TrustVector Compute(IReadOnlyCollection<string> preTrusted, double alpha = 0.15, TrustVector? previous = null, double epsilon = 1e-9, int maxIterations = 200)
    {
        ArgumentNullException.ThrowIfNull(preTrusted);
        var n = _peers.Count;
        if (n == 0)
        {
            return new TrustVector(new Dictionary<string, double>(StringComparer.Ordinal), 0, 0);
        }

        // p: uniform over the pre-trusted peers present (over everyone when none is configured).
        var p = new double[n];
        var seeds = preTrusted.Where(_ids.ContainsKey).Select(s => _ids[s]).Distinct().ToList();
        if (seeds.Count == 0)
        {
            Array.Fill(p, 1.0 / n);
        }
        else
        {
            foreach (var s in seeds)
            {
                p[s] = 1.0 / seeds.Count;
            }
        }

        // C in compressed rows: only positive opinions, normalised per row. Rows without any are "dangling".
        var rowStart = new int[n + 1];
        var columns = new List<int>(EdgeCount);
        var values = new List<double>(EdgeCount);
        var dangling = new bool[n];
        for (var i = 0; i < n; i++)
        {
            rowStart[i] = columns.Count;
            var sum = 0.0;
            foreach (var w in _out[i].Values)
            {
                if (w > 0)
                {
                    sum += w;
                }
            }

            if (sum <= 0)
            {
                dangling[i] = true;
                continue;
            }

            foreach (var (j, w) in _out[i])
            {
                if (w > 0)
                {
                    columns.Add(j);
                    values.Add(w / sum);
                }
            }
        }

        rowStart[n] = columns.Count;
        var col = columns.ToArray();
        var val = values.ToArray();

        var t = new double[n];
        if (previous is not null && previous.Trust.Count > 0)
        {
            for (var i = 0; i < n; i++)
            {
                t[i] = previous.Trust.TryGetValue(_peers[i], out var v) ? v : 0;
            }

            var total = t.Sum();
            if (total <= 0)
            {
                Array.Copy(p, t, n);
            }
            else
            {
                for (var i = 0; i < n; i++)
                {
                    t[i] /= total;
                }
            }
        }
        else
        {
            Array.Copy(p, t, n);
        }

        var next = new double[n];
        var iterations = 0;
        var residual = double.MaxValue;
        while (iterations < maxIterations && residual > epsilon)
        {
            // Trust held by dangling peers (no positive opinion of anyone) goes back to the pre-trusted.
            var danglingMass = 0.0;
            Array.Clear(next);
            for (var i = 0; i < n; i++)
            {
                var ti = t[i];
                if (ti == 0)
                {
                    continue;
                }

                if (dangling[i])
                {
                    danglingMass += ti;
                    continue;
                }

                for (var k = rowStart[i]; k < rowStart[i + 1]; k++)
                {
                    next[col[k]] += ti * val[k];
                }
            }

            residual = 0;
            for (var j = 0; j < n; j++)
            {
                var v = ((1 - alpha) * (next[j] + (danglingMass * p[j]))) + (alpha * p[j]);
                residual += Math.Abs(v - t[j]);
                next[j] = v;
            }

            (t, next) = (next, t);
            iterations++;
        }

        var trust = new Dictionary<string, double>(n, StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            trust[_peers[i]] = t[i];
        }

        return new TrustVector(trust, iterations, residual);
    }

    private int Intern(string peer)
    {
        if (!_ids.TryGetValue(peer, out var id))
        {
            id = _peers.Count;
            _ids[peer] = id;
            _peers.Add(peer);
            _out.Add([]);
        }

        return id;
    }
}
