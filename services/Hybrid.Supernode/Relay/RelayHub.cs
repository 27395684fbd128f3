using System.Collections.Concurrent;
using System.Security.Cryptography;
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
public sealed class RelayHub(SupernodeOptions options, SupernodeMetrics metrics)
{
    private readonly ConcurrentDictionary<string, RelayLink> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<PeerId, int> _perPeer = new();

    /// <summary>Registers a link offer; refused when either peer already holds its share of links.</summary>
    public RelayLink Offer(PeerId dialer, PeerId target)
    {
        if (!TryCount(dialer))
        {
            metrics.RelayLinks.WithLabels("refused_limit").Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"this peer already holds {options.RelayLinksPerPeer} relayed links on this supernode; close some first"));
        }

        if (!TryCount(target))
        {
            Uncount(dialer);
            metrics.RelayLinks.WithLabels("refused_limit").Inc();
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"{target} already holds {options.RelayLinksPerPeer} relayed links on this supernode; try again later"));
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
            Uncount(link.Dialer);
            Uncount(link.Target);
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
        var up = PumpAsync(dialerRequests, target.Responses, budget, ended.Token);
        var down = PumpAsync(target.Requests, dialerResponses, budget, ended.Token);
        var first = await Task.WhenAny(up, down);
        await ended.CancelAsync();
        await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        metrics.RelayLinks.WithLabels(first.IsFaulted && first.Exception?.InnerException is RpcException { StatusCode: StatusCode.ResourceExhausted } ? "cut_budget" : "closed").Inc();
    }

    private async Task PumpAsync(IAsyncStreamReader<RelayFrame> from, IAsyncStreamWriter<RelayFrame> to, long[] budget, CancellationToken ended)
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

                if (Interlocked.Add(ref budget[0], -frame.Data.Length) < 0)
                {
                    throw new RpcException(new Status(StatusCode.ResourceExhausted, $"the relayed link carried its limit of {options.RelayBytesPerLink} bytes"));
                }

                metrics.RelayBytes.Inc(frame.Data.Length);
                await to.WriteAsync(frame, ended);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException || ex is RpcException { StatusCode: not StatusCode.ResourceExhausted })
        {
            // One side left: the link is over.
        }
    }

    private bool TryCount(PeerId peer)
    {
        while (true)
        {
            var current = _perPeer.GetOrAdd(peer, 0);
            if (current >= options.RelayLinksPerPeer)
            {
                return false;
            }

            if (_perPeer.TryUpdate(peer, current + 1, current))
            {
                return true;
            }
        }
    }

    private void Uncount(PeerId peer)
    {
        while (_perPeer.TryGetValue(peer, out var current))
        {
            if (current <= 1 ? _perPeer.TryRemove(new KeyValuePair<PeerId, int>(peer, current)) : _perPeer.TryUpdate(peer, current - 1, current))
            {
                return;
            }
        }
    }
}
