namespace Hybrid.Index.Federation;

/// <summary>
/// Which supernode of a cluster pulls from the peer clusters (one per cluster, key 0): every
/// supernode asks at each interval, the holder keeps the lease by asking, and another takes it
/// once the holder has not asked for the lease's length (it died, or left). Held in memory: a
/// lease lost with its silo is simply taken by the next supernode that asks.
/// </summary>
[Alias("hybrid.IFederationLeaseGrain")]
public interface IFederationLeaseGrain : IGrainWithIntegerKey
{
    /// <summary>Whether <paramref name="holder"/> holds the lease now (renewed, or taken) for <paramref name="length"/>.</summary>
    [Alias("Hold")]
    Task<bool> Hold(string holder, TimeSpan length);
}

/// <inheritdoc cref="IFederationLeaseGrain"/>
public sealed class FederationLeaseGrain(TimeProvider time) : Grain, IFederationLeaseGrain
{
    private string? _holder;
    private DateTimeOffset _until;

    public Task<bool> Hold(string holder, TimeSpan length)
    {
        var now = time.GetUtcNow();
        if (_holder is null || _holder == holder || now >= _until)
        {
            _holder = holder;
            _until = now + length;
            return Task.FromResult(true);
        }

        return Task.FromResult(false);
    }
}
