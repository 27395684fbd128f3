using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Hybrid.Index.Reputation;

/// <summary>One edge of the receipt graph as persisted.</summary>
[GenerateSerializer, Immutable]
public sealed record TrustEdge([property: Id(0)] string From, [property: Id(1)] string To, [property: Id(2)] double Weight);

/// <summary>Durable state of the trust graph.</summary>
[GenerateSerializer]
public sealed class TrustState
{
    [Id(0)] public List<TrustEdge> Edges { get; set; } = [];
}

/// <inheritdoc cref="ITrustGrain"/>
/// <remarks>
/// Contributions are applied in memory at once and written with the next recomputation (every
/// <see cref="TrustOptions.RecomputeInterval"/> while anything changed), so a burst of reviews costs
/// one write, not one per review. Each recomputation starts from the previous vector.
/// </remarks>
[CollectionAgeLimit(AlwaysActive = true)]
public sealed partial class TrustGrain(
    [PersistentState("trust", IndexStorage.ProviderName)] IPersistentState<TrustState> state,
    IOptions<TrustOptions> options,
    TimeProvider time,
    ILogger<TrustGrain> logger) : Grain, ITrustGrain
{
    private readonly TrustGraph _graph = new();
    private TrustVector? _vector;
    private TrustScores _scores = new(ImmutableDictionary<string, int>.Empty, DateTimeOffset.MinValue);
    private bool _dirty;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        foreach (var edge in state.State.Edges)
        {
            _graph.Add(edge.From, edge.To, edge.Weight);
        }

        Calculate();
        this.RegisterGrainTimer(RecomputeIfChangedAsync, new GrainTimerCreationOptions(options.Value.RecomputeInterval, options.Value.RecomputeInterval) { Interleave = false });
        return Task.CompletedTask;
    }

    public Task Contribute(string reviewer, string reviewed, double delta)
    {
        _graph.Add(reviewer, reviewed, delta);
        _dirty = true;
        return Task.CompletedTask;
    }

    public Task<TrustStanding> Standing(string peer)
    {
        var trust = _vector is { } v && v.Trust.TryGetValue(peer, out var t) ? t : 0;
        return Task.FromResult(new TrustStanding(trust, _vector?.ScoreOf(peer) ?? 0, _scores.ComputedAt, _vector?.Trust.Count ?? 0));
    }

    public Task<TrustScores> Scores() => Task.FromResult(_scores);

    private async Task RecomputeIfChangedAsync(CancellationToken cancellationToken)
    {
        if (_dirty)
        {
            await PersistAndCalculateAsync();
        }
    }

    private async Task PersistAndCalculateAsync()
    {
        _dirty = false;
        state.State.Edges = [.. _graph.Edges().Select(e => new TrustEdge(e.From, e.To, e.Weight))];
        await state.WriteStateAsync();
        Calculate();
    }

    private void Calculate()
    {
        var started = time.GetTimestamp();
        _vector = _graph.Compute(options.Value.PreTrusted, options.Value.Alpha, _vector);
        var scores = _vector.Trust.ToImmutableDictionary(p => p.Key, p => _vector.ScoreOf(p.Key), StringComparer.Ordinal);
        _scores = new TrustScores(scores, time.GetUtcNow());
        var elapsed = time.GetElapsedTime(started);
        LogComputed(logger, _graph.PeerCount, _graph.EdgeCount, _vector.Iterations, elapsed.TotalMilliseconds);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Global trust computed: {Peers} peers, {Edges} edges, {Iterations} iterations, {Milliseconds:0} ms")]
    private static partial void LogComputed(ILogger logger, int peers, int edges, int iterations, double milliseconds);
}
