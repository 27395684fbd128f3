using System.Threading.RateLimiting;
using Grpc.Core;
using Hybrid.Index.Directory;
using Hybrid.Protocol.Identity;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;
using Microsoft.Extensions.Caching.Memory;

namespace Hybrid.Supernode.Api;

/// <summary>
/// Identities are free to generate, so a new one pays before the network stores anything it signed:
/// a proof-of-work stamp bound to its key (<see cref="WorkStamps"/>), and a place in two budgets for
/// new identities, one per client address (IPv6 per /64) and one per supernode. Known identities
/// pass at the cost of a cache look-up.
/// </summary>
public sealed class IdentityAdmission : IDisposable
{
    private readonly IGrainFactory _grains;
    private readonly SupernodeOptions _options;
    private readonly SupernodeMetrics _metrics;
    private readonly MemoryCache _known = new(new MemoryCacheOptions { SizeLimit = 200_000 });
    private readonly PartitionedRateLimiter<string> _perAddress;
    private readonly RateLimiter _perSupernode;

    public IdentityAdmission(IGrainFactory grains, SupernodeOptions options, SupernodeMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(options);
        _grains = grains;
        _options = options;
        _metrics = metrics;
        _perAddress = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetSlidingWindowLimiter(address, _ => new SlidingWindowRateLimiterOptions
        {
            PermitLimit = options.NewIdentitiesPerAddressPerHour,
            Window = TimeSpan.FromHours(1),
            SegmentsPerWindow = 12,
            QueueLimit = 0,
        }));
        _perSupernode = new SlidingWindowRateLimiter(new SlidingWindowRateLimiterOptions
        {
            PermitLimit = options.NewIdentitiesPerMinute,
            Window = TimeSpan.FromMinutes(1),
            SegmentsPerWindow = 6,
            QueueLimit = 0,
        });
    }

    /// <summary>The leading zero bits a new identity's stamp needs here (0: no work asked).</summary>
    public int WorkBits => _options.IdentityWorkBits;

    /// <summary>Whether <paramref name="peer"/> is known to have been admitted (no grain call).</summary>
    public bool IsKnown(PeerId peer) => _known.TryGetValue(peer, out _);

    /// <summary>Whether <paramref name="peer"/> is an identity the network knows (cache, else its grain).</summary>
    public async Task<bool> IsRegisteredAsync(PeerId peer)
    {
        if (IsKnown(peer))
        {
            return true;
        }

        if (await _grains.GetGrain<IPeerGrain>(peer.ToString()).Describe() is null)
        {
            return false;
        }

        Remember(peer);
        return true;
    }

    /// <summary>Remembers an identity the index knows.</summary>
    public void Remember(PeerId peer) =>
        _known.Set(peer, true, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = TimeSpan.FromHours(1) });

    /// <summary>
    /// For a signed write made without a session: the signer must be known to the network, or be
    /// admitted now with the stamp it sent as <see cref="WorkStamps.WorkHeader"/> metadata.
    /// </summary>
    public async Task EnsureKnownAsync(PeerId signer, byte[] publicKey, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (IsKnown(signer))
        {
            return;
        }

        var grain = _grains.GetGrain<IPeerGrain>(signer.ToString());
        var result = await grain.Admit(publicKey, mayCreate: false);
        if (result.Outcome == IndexOutcome.NewIdentity)
        {
            ChargeNew(publicKey, ParseStamp(context.RequestHeaders.GetValue(WorkStamps.WorkHeader)), ClientAddresses.Key(context));
            result = await grain.Admit(publicKey, mayCreate: true);
        }

        if (!result.Succeeded)
        {
            throw new RpcException(new Status(IndexStatus.For(result.Outcome), result.Message));
        }

        Remember(signer);
    }

    /// <summary>
    /// Charges one new identity: its stamp must carry the work asked here, and the caller's address and
    /// this supernode must have room in their budgets for new identities.
    /// </summary>
    public void ChargeNew(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> stamp, string address)
    {
        if (_options.IdentityWorkBits > 0 && WorkStamps.Bits(publicKey, stamp) < _options.IdentityWorkBits)
        {
            _metrics.IdentitiesRefused.WithLabels("no_work").Inc();
            throw new RpcException(
                new Status(StatusCode.FailedPrecondition, $"this identity is new to the network: its first write needs a proof-of-work stamp of {_options.IdentityWorkBits} bits over its key (sent as 'work' in the session hello, or as '{WorkStamps.WorkHeader}' metadata in hex)"),
                new Metadata { { WorkStamps.WorkBitsTrailer, _options.IdentityWorkBits.ToString(System.Globalization.CultureInfo.InvariantCulture) } });
        }

        using (var lease = _perAddress.AttemptAcquire(address))
        {
            if (!lease.IsAcquired)
            {
                _metrics.IdentitiesRefused.WithLabels("address_budget").Inc();
                throw new RpcException(new Status(StatusCode.ResourceExhausted, $"too many new identities from your address: at most {_options.NewIdentitiesPerAddressPerHour} per hour; use an identity you already have"));
            }
        }

        using (var lease = _perSupernode.AttemptAcquire())
        {
            if (!lease.IsAcquired)
            {
                _metrics.IdentitiesRefused.WithLabels("supernode_budget").Inc();
                throw new RpcException(new Status(StatusCode.ResourceExhausted, $"this supernode admits at most {_options.NewIdentitiesPerMinute} new identities a minute; retry in a minute"));
            }
        }

        _metrics.IdentitiesAdmitted.Inc();
    }

    public void Dispose()
    {
        _known.Dispose();
        _perAddress.Dispose();
        _perSupernode.Dispose();
    }

    private static byte[] ParseStamp(string? hex)
    {
        if (string.IsNullOrEmpty(hex))
        {
            return [];
        }

        try
        {
            return hex.Length == WorkStamps.StampBytes * 2 ? Convert.FromHexString(hex) : [];
        }
        catch (FormatException)
        {
            return [];
        }
    }
}
