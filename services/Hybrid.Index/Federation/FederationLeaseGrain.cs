using Orleans.Storage;

namespace Hybrid.Index.Federation;

/// <summary>
/// Which supernode of a cluster pulls from the peer clusters (one per cluster, key 0): every
/// supernode asks at each interval, the holder keeps the lease by asking (renewed once half of it
/// has run), and another takes it once the holder has not asked for the lease's length (it died, or left).
/// </summary>
/// <remarks>
/// The lease is durable and every grant is a conditional write (read, decide, write with the read
/// ETag). While membership converges a grain may briefly have two activations (a silo joining moves
/// the directory); each then reads the holder the other wrote, and of two grants at the same moment
/// only one write lands, so two supernodes never both believe they hold it.
/// </remarks>
[Alias("hybrid.IFederationLeaseGrain")]
public interface IFederationLeaseGrain : IGrainWithIntegerKey
{
    /// <summary>Whether <paramref name="holder"/> holds the lease now (renewed, or taken) for <paramref name="length"/>.</summary>
    [Alias("Hold")]
    Task<bool> Hold(string holder, TimeSpan length);
}

/// <summary>Who holds the federation lease, and until when.</summary>
[GenerateSerializer, Alias("hybrid.FederationLeaseState")]
public sealed class FederationLeaseState
{
    [Id(0)] public string? Holder { get; set; }

    [Id(1)] public DateTimeOffset Until { get; set; }
}

/// <inheritdoc cref="IFederationLeaseGrain"/>
public sealed class FederationLeaseGrain(
    [PersistentState("federation-lease", IndexStorage.ProviderName)] IPersistentState<FederationLeaseState> state,
    TimeProvider time) : Grain, IFederationLeaseGrain
{
    public async Task<bool> Hold(string holder, TimeSpan length)
    {
        // Read first: another activation of this grain may have granted it since this one last looked.
        await state.ReadStateAsync();
        var now = time.GetUtcNow();
        var lease = state.State;
        if (lease.Holder is not null && lease.Holder != holder && now < lease.Until)
        {
            return false;
        }

        if (lease.Holder == holder && lease.Until - now > length / 2)
        {
            // Renewed only once half of it has run: a durable write every interval would be the
            // cluster's one steady write while nothing else changes, and each write makes every
            // reader of an embedded store drop its page cache (search fetches its pages from it).
            return true;
        }

        lease.Holder = holder;
        lease.Until = now + length;
        try
        {
            await state.WriteStateAsync();
            return true;
        }
        catch (InconsistentStateException)
        {
            // Another activation granted it between the read and this write: that grant stands.
            return false;
        }
    }
}
