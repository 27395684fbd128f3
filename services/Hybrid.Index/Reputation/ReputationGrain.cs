using System.Collections.Immutable;
using System.Text.Json;
using Hybrid.Index.Storage;

namespace Hybrid.Index.Reputation;

/// <summary>What a peer's reputation remembers of one review it received.</summary>
[GenerateSerializer, Immutable, Alias("hybrid.ReviewEntry")]
public sealed record ReviewEntry([property: Id(0)] uint Stars, [property: Id(1)] long CreatedMs, [property: Id(2)] long UpdatedMs);

/// <summary>Durable state of a peer's reputation as an earlier version kept it (whole); read once and moved into items.</summary>
[GenerateSerializer, Alias("hybrid.ReputationState")]
public sealed class ReputationState
{
    [Id(0)] public Dictionary<string, ReviewEntry> Reviews { get; set; } = new(StringComparer.Ordinal);
}

/// <inheritdoc cref="IReputationGrain"/>
/// <remarks>
/// One durable item per review received (set <c>reputation/{peer}</c>), written before
/// <see cref="Record"/> returns and before the counts change: a failed write changes nothing.
/// </remarks>
public sealed class ReputationGrain(
    [PersistentState("reputation", IndexStorage.ProviderName)] IPersistentState<ReputationState> legacy,
    IItemStore items,
    TimeProvider time) : Grain, IReputationGrain
{
    private readonly ReputationState _reviews = new();
    /// <summary>The prior of the Bayesian score: a peer with few reviews starts near this many stars.</summary>
    public const double PriorStars = 3.0;

    /// <summary>How many reviews' worth of weight the prior has.</summary>
    public const double PriorWeight = 5;

    private static readonly TimeSpan Recent = TimeSpan.FromDays(90);

    private string ItemSet => $"reputation/{this.GetPrimaryKeyString()}";

    // Written under this activation's claim, taken before the set is read.
    private ClaimedItemSets _own = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _own = await ClaimedItemSets.ClaimAsync(items, this, ItemSet);
        await foreach (var (reviewId, value) in items.ReadAllAsync(ItemSet, cancellationToken))
        {
            _reviews.Reviews[reviewId] = JsonSerializer.Deserialize<ReviewEntry>(value)!;
        }

        if (legacy.State.Reviews.Count > 0)
        {
            foreach (var (reviewId, entry) in legacy.State.Reviews.Where(r => !_reviews.Reviews.ContainsKey(r.Key)))
            {
                await _own.PutAsync(ItemSet, reviewId, JsonSerializer.SerializeToUtf8Bytes(entry));
                _reviews.Reviews[reviewId] = entry;
            }

            await legacy.ClearStateAsync(cancellationToken);
        }
    }

    public async Task Record(string reviewId, uint stars, long createdMs, long updatedMs)
    {
        var entry = new ReviewEntry(stars, createdMs, updatedMs);
        if (_reviews.Reviews.TryGetValue(reviewId, out var existing) && existing == entry)
        {
            return;
        }

        await _own.PutAsync(ItemSet, reviewId, JsonSerializer.SerializeToUtf8Bytes(entry));
        _reviews.Reviews[reviewId] = entry;
    }

    public Task<ReviewIdPage> Page(int offset, int limit)
    {
        var ids = _reviews.Reviews
            .OrderByDescending(r => r.Value.CreatedMs)
            .ThenBy(r => r.Key, StringComparer.Ordinal)
            .Skip(Math.Max(0, offset))
            .Take(Math.Clamp(limit, 1, 100))
            .Select(r => r.Key)
            .ToImmutableArray();
        return Task.FromResult(new ReviewIdPage(ids, _reviews.Reviews.Count));
    }

    public Task<ReviewSummary> Summary()
    {
        var reviews = _reviews.Reviews.Values;
        var count = reviews.Count;
        if (count == 0)
        {
            return Task.FromResult(new ReviewSummary(0, 0, PriorStars, 0, 0));
        }

        var sum = reviews.Sum(r => (double)r.Stars);
        var average = sum / count;
        var since = (time.GetUtcNow() - Recent).ToUnixTimeMilliseconds();
        var recent = reviews.Where(r => r.UpdatedMs >= since).ToList();
        var recentAverage = recent.Count == 0 ? 0 : recent.Average(r => (double)r.Stars);
        return Task.FromResult(new ReviewSummary(
            count,
            Math.Round(average, 3),
            Math.Round(((PriorStars * PriorWeight) + sum) / (PriorWeight + count), 3),
            Math.Round(recentAverage, 3),
            recent.Count == 0 ? 0 : Math.Round(recentAverage - average, 3)));
    }
}
