using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.RateLimiting;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Configuration;
using Hybrid.Supernode.Ops;

namespace Hybrid.Supernode.Relay;

/// <summary>The target's side of a relayed link, handed to the dialer's call once the target answers.</summary>
public sealed record RelayAnswer(IAsyncStreamReader<RelayFrame> Requests, IAsyncStreamWriter<RelayFrame> Responses, CancellationToken Aborted);

/// <summary>A relayed link between a dialer and a target, from the offer until both calls end.</summary>
public sealed class RelayLink(string id, PeerId dialer, PeerId target)
{
    public string Id { get; } = id;

    public PeerId Dialer { get; } = dialer;

    public PeerId Target { get; } = target;

    /// <summary>Completed by the target's call when it claims the link.</summary>
    public TaskCompletionSource<RelayAnswer> Answered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when the pipe ends; the target's call returns then.</summary>
    public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Pairs the two calls of relayed links and pipes bytes between them. The supernode never sees
/// plaintext: the peers run mutual TLS end to end inside the data frames. Bounded per peer
/// (concurrent links) and per link (bytes).
/// </summary>
public sealed class RelayHub : IDisposable
{
    private readonly ConcurrentDictionary<string, RelayLink> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);
    private readonly PartitionedRateLimiter<PeerId> _bytes;
    private readonly SupernodeOptions options;
    private readonly SupernodeMetrics metrics;

    public RelayHub(SupernodeOptions options, SupernodeMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.metrics = metrics;
        // Relayed bytes per sending peer, in KiB: a token bucket that throttles (queues) rather than cuts.
        var perSecond = (int)Math.Clamp(options.RelayBytesPerPeerPerSecond / 1024, 1, int.MaxValue / 4);
        _bytes = PartitionedRateLimiter.Create<PeerId, PeerId>(peer => RateLimitPartition.GetTokenBucketLimiter(peer, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = perSecond * 4,
            TokensPerPeriod = perSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = perSecond * 4,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            AutoReplenishment = true,
        }));
    }

    /// <summary>
    /// Registers a link offer; refused when the supernode holds its limit of links, either peer already
    /// holds its share, or this dialer already holds its share of the target's (so one dialer can never
    /// take all of a target's places).
    /// </summary>
    public RelayLink Offer(PeerId dialer, PeerId target)
    {
        var pair = $"{dialer}>{target}";
        (string Key, int Limit, string Refusal)[] places =
        [
            ("*", options.RelayLinksTotal, $"this supernode relays its limit of {options.RelayLinksTotal} links; try again later"),
            (dialer.ToString(), options.RelayLinksPerPeer, $"this peer already holds {options.RelayLinksPerPeer} relayed links on this supernode; close some first"),
            (target.ToString(), options.RelayLinksPerPeer, $"{target} already holds {options.RelayLinksPerPeer} relayed links on this supernode; try again later"),
            (pair, options.RelayLinksPerPair, $"this peer already holds {options.RelayLinksPerPair} relayed links to {target}; reuse one"),
        ];
        for (var i = 0; i < places.Length; i++)
        {
            if (!TryCount(places[i].Key, places[i].Limit))
            {
                for (var j = 0; j < i; j++)
                {
                    Uncount(places[j].Key);
                }

                metrics.RelayLinks.WithLabels("refused_limit").Inc();
                throw new RpcException(new Status(StatusCode.ResourceExhausted, places[i].Refusal));
            }
        }

        var link = new RelayLink(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), dialer, target);
        _pending[link.Id] = link;
        metrics.RelayLinksActive.Inc();
        return link;
    }

    /// <summary>The target's claim on an offered link.</summary>
    public bool TryClaim(string linkId, PeerId target, out RelayLink link)
    {
        if (_pending.TryGetValue(linkId, out link!) && link.Target.Equals(target) && _pending.TryRemove(linkId, out _))
        {
            return true;
        }

        link = null!;
        return false;
    }

    /// <summary>Ends a link (answered or not) and frees its places.</summary>
    public void Release(RelayLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        _pending.TryRemove(link.Id, out _);
        if (link.Done.TrySetResult())
        {
            Uncount("*");
            Uncount(link.Dialer.ToString());
            Uncount(link.Target.ToString());
            Uncount($"{link.Dialer}>{link.Target}");
            metrics.RelayLinksActive.Dec();
        }
    }

    /// <summary>Pipes data frames both ways until either side ends or the link's byte budget is spent.</summary>
    public async Task PipeAsync(RelayLink link, IAsyncStreamReader<RelayFrame> dialerRequests, IAsyncStreamWriter<RelayFrame> dialerResponses, RelayAnswer target, CancellationToken dialerAborted)
    {
        ArgumentNullException.ThrowIfNull(link);
        ArgumentNullException.ThrowIfNull(target);
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(dialerAborted, target.Aborted);
        var budget = new long[] { options.RelayBytesPerLink };
        var up = PumpAsync(dialerRequests, target.Responses, budget, link.Dialer, ended.Token);
        var down = PumpAsync(target.Requests, dialerResponses, budget, link.Target, ended.Token);
        var first = await Task.WhenAny(up, down);
        await ended.CancelAsync();
        await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        metrics.RelayLinks.WithLabels(first.IsFaulted && first.Exception?.InnerException is RpcException { StatusCode: StatusCode.ResourceExhausted } ? "cut_budget" : "closed").Inc();
    }

    private async Task PumpAsync(IAsyncStreamReader<RelayFrame> from, IAsyncStreamWriter<RelayFrame> to, long[] budget, PeerId sender, CancellationToken ended)
    {
        try
        {
            while (await from.MoveNext(ended))
            {
                var frame = from.Current;
                if (frame.KindCase != RelayFrame.KindOneofCase.Data)
                {
                    return;
                }

                await ChargeAsync(sender, budget, frame.Data.Length, ended);
                await to.WriteAsync(frame, ended);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException || ex is RpcException { StatusCode: not StatusCode.ResourceExhausted })
        {
            // One side left: the link is over.
        }
    }

    /// <summary>Splices the link's two sockets (see <see cref="RelayPort"/>) under the same limits as frames.</summary>
    public async Task SpliceAsync(RelayLink link, SplicedSockets sockets, CancellationToken ended)
    {
        ArgumentNullException.ThrowIfNull(link);
        var budget = new long[] { options.RelayBytesPerLink };
        var cut = false;
        metrics.RelayLinks.WithLabels("spliced").Inc();
        await RelayPort.SpliceAsync(sockets, async (fromDialer, bytes, token) =>
        {
            try
            {
                await ChargeAsync(fromDialer ? link.Dialer : link.Target, budget, bytes, token);
            }
            catch (RpcException)
            {
                cut = true;
                throw new OperationCanceledException("the relayed link hit a limit");
            }
        }, ended);
        metrics.RelayLinks.WithLabels(cut ? "cut_budget" : "closed").Inc();
    }

    /// <summary>
    /// Charges <paramref name="bytes"/> sent by <paramref name="sender"/> to the link's budget and to the
    /// sender's rate (each direction to the peer sending it: nobody spends another's relay budget).
    /// </summary>
    private async ValueTask ChargeAsync(PeerId sender, long[] budget, int bytes, CancellationToken ended)
    {
        if (Interlocked.Add(ref budget[0], -bytes) < 0)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"the relayed link carried its limit of {options.RelayBytesPerLink} bytes"));
        }

        using (var lease = await _bytes.AcquireAsync(sender, Math.Max(1, bytes / 1024), ended))
        {
            if (!lease.IsAcquired)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted, "this peer is sending more relayed bytes than the supernode allows per second; the link was closed"));
            }
        }

        metrics.RelayBytes.Inc(bytes);
        metrics.RelayFrames.Inc();
    }

    public void Dispose() => _bytes.Dispose();

    private bool TryCount(string key, int limit)
    {
        while (true)
        {
            var current = _counts.GetOrAdd(key, 0);
            if (current >= limit)
            {
                return false;
            }

            if (_counts.TryUpdate(key, current + 1, current))
            {
                return true;
            }
        }
    }

    private void Uncount(string key)
    {
        while (_counts.TryGetValue(key, out var current))
        {
            if (current <= 1 ? _counts.TryRemove(new KeyValuePair<string, int>(key, current)) : _counts.TryUpdate(key, current - 1, current))
            {
                return;
            }
        }
    }
}
