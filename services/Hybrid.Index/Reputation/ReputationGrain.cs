using System.Collections.Immutable;

namespace Hybrid.Index.Reputation;

/// <summary>What a peer's reputation remembers of one review it received.</summary>
[GenerateSerializer, Immutable]
public sealed record ReviewEntry([property: Id(0)] uint Stars, [property: Id(1)] long CreatedMs, [property: Id(2)] long UpdatedMs);

/// <summary>Durable state of a peer's reputation.</summary>
[GenerateSerializer]
public sealed class ReputationState
{
    [Id(0)] public Dictionary<string, ReviewEntry> Reviews { get; set; } = new(StringComparer.Ordinal);
}

/// <inheritdoc cref="IReputationGrain"/>
public sealed class ReputationGrain(
    [PersistentState("reputation", IndexStorage.ProviderName)] IPersistentState<ReputationState> state,
    TimeProvider time) : Grain, IReputationGrain
{
    /// <summary>The prior of the Bayesian score: a peer with few reviews starts near this many stars.</summary>
    public const double PriorStars = 3.0;

    /// <summary>How many reviews' worth of weight the prior has.</summary>
    public const double PriorWeight = 5;

    private static readonly TimeSpan Recent = TimeSpan.FromDays(90);

    public async Task Record(string reviewId, uint stars, long createdMs, long updatedMs)
    {
        var entry = new ReviewEntry(stars, createdMs, updatedMs);
        if (state.State.Reviews.TryGetValue(reviewId, out var existing) && existing == entry)
        {
            return;
        }

        state.State.Reviews[reviewId] = entry;
        await state.WriteStateAsync();
    }

    public Task<ReviewIdPage> Page(int offset, int limit)
    {
        var ids = state.State.Reviews
            .OrderByDescending(r => r.Value.CreatedMs)
            .ThenBy(r => r.Key, StringComparer.Ordinal)
            .Skip(Math.Max(0, offset))
            .Take(Math.Clamp(limit, 1, 100))
            .Select(r => r.Key)
            .ToImmutableArray();
        return Task.FromResult(new ReviewIdPage(ids, state.State.Reviews.Count));
    }

    public Task<ReviewSummary> Summary()
    {
        var reviews = state.State.Reviews.Values;
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
