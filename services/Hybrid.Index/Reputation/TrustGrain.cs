using System.Collections.Immutable;
using System.Text.Json;
using Hybrid.Index.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Hybrid.Index.Reputation;

/// <summary>One edge of the receipt graph as an earlier version persisted it (whole, in one state).</summary>
[GenerateSerializer, Immutable, Alias("hybrid.TrustEdge")]
public sealed record TrustEdge([property: Id(0)] string From, [property: Id(1)] string To, [property: Id(2)] double Weight);

/// <summary>Durable state of the trust graph as an earlier version kept it; read once and moved into items.</summary>
[GenerateSerializer, Alias("hybrid.TrustState")]
public sealed class TrustState
{
    [Id(0)] public List<TrustEdge> Edges { get; set; } = [];
}

/// <inheritdoc cref="ITrustGrain"/>
/// <remarks>
/// Each review's input is one durable item (set <see cref="InputSet"/>, field = review id), written
/// before <see cref="Put"/> returns: a crash loses nothing acknowledged, and a write costs one item.
/// The graph is the sum of the inputs, rebuilt from them on activation; global trust is recomputed
/// from it every <see cref="TrustOptions.RecomputeInterval"/> while anything changed.
/// </remarks>
[CollectionAgeLimit(AlwaysActive = true)]
public sealed partial class TrustGrain(
    [PersistentState("trust", IndexStorage.ProviderName)] IPersistentState<TrustState> legacy,
    IItemStore items,
    IOptions<TrustOptions> options,
    TimeProvider time,
    ILogger<TrustGrain> logger) : Grain, ITrustGrain
{
    /// <summary>The item set holding every review's input.</summary>
    public const string InputSet = "trust-inputs";

    private readonly TrustGraph _graph = new();
    private readonly Dictionary<string, TrustInput> _inputs = new(StringComparer.Ordinal);
    private TrustVector? _vector;
    private TrustScores _scores = new(ImmutableDictionary<string, int>.Empty, DateTimeOffset.MinValue);
    private bool _dirty;

    // Written under this activation's claim, taken before the set is read.
    private ClaimedItemSets _own = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _own = await ClaimedItemSets.ClaimAsync(items, this, InputSet);
        await foreach (var (reviewId, value) in items.ReadAllAsync(InputSet, cancellationToken))
        {
            var input = Decode(value);
            _inputs[reviewId] = input;
            _graph.Add(input.Reviewer, input.Reviewed, input.Contribution);
        }

        await MoveLegacyEdgesAsync();
        Calculate();
        this.RegisterGrainTimer(RecomputeIfChangedAsync, new GrainTimerCreationOptions(options.Value.RecomputeInterval, options.Value.RecomputeInterval) { Interleave = false });
    }

    public async Task Put(TrustInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var previous = _inputs.GetValueOrDefault(input.ReviewId);
        if (previous is not null && previous.Version >= input.Version)
        {
            return;
        }

        await _own.PutAsync(InputSet, input.ReviewId, Encode(input));
        _inputs[input.ReviewId] = input;
        _graph.Add(input.Reviewer, input.Reviewed, input.Contribution - (previous?.Contribution ?? 0));
        _dirty = true;
    }

    public Task<TrustStanding> Standing(string peer)
    {
        var trust = _vector is { } v && v.Trust.TryGetValue(peer, out var t) ? t : 0;
        return Task.FromResult(new TrustStanding(trust, _vector?.ScoreOf(peer) ?? 0, _scores.ComputedAt, _vector?.Trust.Count ?? 0));
    }

    public Task<TrustScores> Scores() => Task.FromResult(_scores);

    /// <summary>The graph an earlier version stored whole becomes items (one per edge), then the old state is cleared.</summary>
    private async Task MoveLegacyEdgesAsync()
    {
        if (legacy.State.Edges.Count == 0)
        {
            return;
        }

        foreach (var edge in legacy.State.Edges)
        {
            var input = new TrustInput($"legacy:{edge.From}>{edge.To}", edge.From, edge.To, edge.Weight, 1);
            if (!_inputs.ContainsKey(input.ReviewId))
            {
                await _own.PutAsync(InputSet, input.ReviewId, Encode(input));
                _inputs[input.ReviewId] = input;
                _graph.Add(input.Reviewer, input.Reviewed, input.Contribution);
            }
        }

        await legacy.ClearStateAsync();
    }

    private Task RecomputeIfChangedAsync(CancellationToken cancellationToken)
    {
        if (_dirty)
        {
            _dirty = false;
            Calculate();
        }

        return Task.CompletedTask;
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

    private static byte[] Encode(TrustInput input) => JsonSerializer.SerializeToUtf8Bytes(input);

    private static TrustInput Decode(byte[] value) => JsonSerializer.Deserialize<TrustInput>(value) ?? throw new InvalidDataException("an empty trust input item");

    [LoggerMessage(Level = LogLevel.Information, Message = "Global trust computed: {Peers} peers, {Edges} edges, {Iterations} iterations, {Milliseconds:0} ms")]
    private static partial void LogComputed(ILogger logger, int peers, int edges, int iterations, double milliseconds);
}
