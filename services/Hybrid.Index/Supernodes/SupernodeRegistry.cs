using System.Collections.Immutable;
using Orleans.Concurrency;

namespace Hybrid.Index.Supernodes;

/// <summary>A supernode as its clients reach it.</summary>
/// <param name="Silo">The Orleans silo address of its host, to match against cluster membership.</param>
/// <param name="Url">The public gRPC URL it advertises.</param>
/// <param name="StartedAt">When it joined.</param>
/// <param name="InternalUrl">Its gRPC URL as the other supernodes reach it (relays are forwarded there).</param>
[GenerateSerializer, Immutable, Alias("hybrid.SupernodeRecord")]
public sealed record SupernodeRecord(
    [property: Id(0)] string Silo,
    [property: Id(1)] string Url,
    [property: Id(2)] DateTimeOffset StartedAt,
    [property: Id(3)] string? InternalUrl = null);

/// <summary>
/// The advertised URLs of the cluster's supernodes (one grain, key 0). Membership decides who
/// is alive; this only maps silos to the URLs clients should use.
/// </summary>
[Alias("hybrid.ISupernodeRegistryGrain")]
public interface ISupernodeRegistryGrain : IGrainWithIntegerKey
{
    /// <summary>Adds or refreshes a supernode, dropping records of silos that are no longer live.</summary>
    Task Register(SupernodeRecord supernode, IReadOnlyCollection<string> liveSilos);

    /// <summary>All records; callers filter by the membership they see.</summary>
    [AlwaysInterleave]
    Task<ImmutableArray<SupernodeRecord>> List();
}

[GenerateSerializer, Alias("hybrid.SupernodeRegistryState")]
public sealed class SupernodeRegistryState
{
    [Id(0)] public ImmutableArray<SupernodeRecord> Supernodes { get; set; } = [];
}

/// <inheritdoc cref="ISupernodeRegistryGrain"/>
public sealed class SupernodeRegistryGrain(
    [PersistentState("supernodes", IndexStorage.ProviderName)] IPersistentState<SupernodeRegistryState> state) : Grain, ISupernodeRegistryGrain
{
    public async Task Register(SupernodeRecord supernode, IReadOnlyCollection<string> liveSilos)
    {
        ArgumentNullException.ThrowIfNull(supernode);
        ArgumentNullException.ThrowIfNull(liveSilos);
        var kept = state.State.Supernodes
            .Where(s => s.Silo != supernode.Silo && liveSilos.Contains(s.Silo))
            .Append(supernode)
            .OrderBy(s => s.StartedAt)
            .ToImmutableArray();
        if (kept.SequenceEqual(state.State.Supernodes))
        {
            return;
        }

        state.State.Supernodes = kept;
        await state.WriteStateAsync();
    }

    public Task<ImmutableArray<SupernodeRecord>> List() => Task.FromResult(state.State.Supernodes);
}
