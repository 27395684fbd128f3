using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Orders;

/// <summary>
/// A seller's stock: accepting an order takes its quantity off the listing, which this peer then
/// re-publishes as a newer version signed by itself (at 0 it shows as sold out). Acceptances are
/// taken one at a time, so concurrent ones never sell the same unit twice.
/// </summary>
public sealed class ListingStock(PeerIdentity identity, SupernodeConnection connection, ListingLookups listings, TimeProvider time) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>
    /// Runs <paramref name="accept"/> only if <paramref name="quantity"/> units of the listing are
    /// still available, after taking them off the listing as published (a new version).
    /// </summary>
    /// <exception cref="RefusedException">Not this seller's active listing, or fewer units left than asked.</exception>
    public async Task<T> TakeAsync<T>(string listingId, uint quantity, Func<Task<T>> accept, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(accept);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var record = await listings.GetAsync(listingId, fresh: true, cancellationToken);
            if (record.Seller != identity.Id.ToString() || record.State != ListingState.Active)
            {
                throw Refuse.WrongState($"listing {listingId} is no longer an active listing of yours ({record.State.ToString().ToLowerInvariant()}); decline the order");
            }

            var left = record.Listing.Quantity;
            if (quantity > left)
            {
                throw Refuse.WrongState(left == 0
                    ? $"listing {listingId} is sold out; decline the order (or publish more)"
                    : $"only {left} left of listing {listingId}, the order asks {quantity}; decline it (or publish more)");
            }

            var listing = record.Listing.Clone();
            listing.Quantity = left - quantity;
            var now = time.GetUtcNow();
            var version = Math.Max((ulong)now.ToUnixTimeMilliseconds(), record.Version + 1);
            var envelope = SignedEnvelopes.Sign(identity, EnvelopeKinds.Listing, version, listing, now, DateTimeOffset.FromUnixTimeMilliseconds(record.ExpiresMs));
            try
            {
                await connection.PublishListingAsync(envelope, cancellationToken);
            }
            catch (RpcException ex)
            {
                throw Refuse.Unavailable($"the listing's stock could not be updated ({ex.Status.Detail}); nothing was accepted, try again", ex);
            }

            listings.Forget(listingId);
            return await accept();
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}
