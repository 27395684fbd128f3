using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Caching.Memory;

namespace Hybrid.Client.Orders;

/// <summary>
/// The listings incoming offers name, looked up at a supernode and verified, cached briefly and
/// bounded: a flood of offers for one listing costs one look-up, charged to this peer's own address,
/// and at most <see cref="MaxConcurrent"/> look-ups run at once.
/// </summary>
public sealed class ListingLookups(SupernodeConnection connection) : IDisposable
{
    /// <summary>Listings remembered.</summary>
    public const int Capacity = 1_000;

    /// <summary>Look-ups in flight at once.</summary>
    public const int MaxConcurrent = 4;

    /// <summary>How long a looked-up listing is used before it is asked for again.</summary>
    public static readonly TimeSpan Freshness = TimeSpan.FromSeconds(30);

    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = Capacity });
    private readonly SemaphoreSlim _inFlight = new(MaxConcurrent, MaxConcurrent);
    private long _lookups;

    /// <summary>Look-ups that went to a supernode (not answered from the cache).</summary>
    public long Lookups => Interlocked.Read(ref _lookups);

    /// <summary>The listing as its seller signed it; <paramref name="fresh"/> skips the cache.</summary>
    public async Task<ListingRecord> GetAsync(string listingId, bool fresh, CancellationToken cancellationToken)
    {
        if (!fresh && _cache.TryGetValue(listingId, out Task<ListingRecord>? cached) && cached is not null)
        {
            try
            {
                return await cached.WaitAsync(cancellationToken);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // A failed look-up is not remembered; ask again below.
            }
        }

        var lookup = LookUpAsync(listingId, cancellationToken);
        _ = _cache.Set(listingId, lookup, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Freshness });
        try
        {
            return await lookup;
        }
        catch
        {
            _cache.Remove(listingId);
            throw;
        }
    }

    /// <inheritdoc />
    /// <summary>Drops a cached listing (this peer just published a newer version of it).</summary>
    public void Forget(string listingId) => _cache.Remove(listingId);

    public void Dispose()
    {
        _cache.Dispose();
        _inFlight.Dispose();
    }

    private async Task<ListingRecord> LookUpAsync(string listingId, CancellationToken cancellationToken)
    {
        await _inFlight.WaitAsync(cancellationToken);
        try
        {
            Interlocked.Increment(ref _lookups);
            // Verified against the seller's signature; a forged answer is counted and another supernode asked.
            return await connection.GetListingAsync(listingId, cancellationToken);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            throw Refuse.WrongState($"listing {listingId} is not known to the network");
        }
        catch (RpcException ex)
        {
            throw Refuse.Unavailable("the listing could not be looked up just now; try again shortly", ex);
        }
        finally
        {
            _inFlight.Release();
        }
    }
}
