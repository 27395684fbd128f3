namespace Hybrid.Client.Connectivity;

/// <summary>The order in which a connection tries the supernodes it knows.</summary>
public static class FailoverOrder
{
    /// <summary>
    /// The supernodes other than the one just lost first, the lost one last. With none lost yet, in
    /// the order known (the seeds first). After a loss each peer starts at its own place among the
    /// others, drawn from <paramref name="random"/>: the peers of a dead supernode spread over the
    /// survivors instead of all trying the same one first, which would fill its handshakes and send
    /// the rest away to back off.
    /// </summary>
    public static List<string> Of(IReadOnlyList<string> known, string? lost, Random random)
    {
        ArgumentNullException.ThrowIfNull(known);
        ArgumentNullException.ThrowIfNull(random);
        var others = known.Where(u => u != lost).ToList();
        if (lost is not null && others.Count > 1)
        {
            var start = random.Next(others.Count);
            others = [.. others.Skip(start), .. others.Take(start)];
        }

        if (lost is not null && known.Contains(lost))
        {
            others.Add(lost);
        }

        return others;
    }
}
