using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Client.Connectivity;
using Hybrid.Client.Store;
using Hybrid.Protocol.Content;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Transfers;

/// <summary>Where a download stands.</summary>
public sealed record FetchStatus(ulong ReceivedBytes, ulong TotalBytes, ulong ResumedFromBytes, int Attempt, string Path, bool Done, string File, string ContentId);

/// <summary>
/// Goods data between peers. Serving: only to a buyer with an accepted order for the content (or to
/// anyone for free content), chunk by chunk from any resume point. Fetching: the manifest is checked
/// against the content id, every chunk against the manifest; a partial file on disk is verified and
/// resumed from its last good chunk, across restarts of either side.
/// </summary>
public sealed partial class TransferService(LocalStore store, PeerDialer dialer, string downloadsDir, long maxUploadBytesPerSecond, ILogger logger)
{
    /// <summary>How long a fetch keeps trying (re-dialing the seller) before it gives up.</summary>
    public static readonly TimeSpan FetchPatience = TimeSpan.FromMinutes(3);

    /// <summary>The manifest of content the caller may fetch.</summary>
    public ContentManifest GetManifest(ContentRequest request, PeerId caller) => ContentManifest.Parser.ParseFrom(Authorize(request, caller).Manifest);

    /// <summary>Streams chunks from the requested resume point.</summary>
    public async Task ServeAsync(ContentRequest request, PeerId caller, IServerStreamWriter<ContentChunk> responses, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responses);
        var content = Authorize(request, caller);
        var manifest = ContentManifest.Parser.ParseFrom(content.Manifest);
        var chunks = manifest.ChunkHashes.Count;
        if (request.FromChunk > chunks)
        {
            throw Refuse.OutOfRange($"the content has {chunks} chunks; asked to start at {request.FromChunk}");
        }

        await using var file = OpenServed(content, manifest);
        var buffer = new byte[manifest.ChunkSize];
        var clock = Stopwatch.StartNew();
        long sent = 0;
        for (var index = (int)request.FromChunk; index < chunks; index++)
        {
            var length = ContentManifests.ChunkLength(manifest, index);
            file.Position = (long)index * manifest.ChunkSize;
            await file.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken);
            // The buffer is reused only after WriteAsync has serialized the message.
            await responses.WriteAsync(new ContentChunk { Index = (uint)index, Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, length)) }, cancellationToken);
            sent += length;
            if (maxUploadBytesPerSecond > 0)
            {
                var due = TimeSpan.FromSeconds((double)sent / maxUploadBytesPerSecond) - clock.Elapsed;
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due, cancellationToken);
                }
            }
        }
    }

    /// <summary>
    /// Downloads <paramref name="contentId"/> from <paramref name="seller"/> into <paramref name="outPath"/>,
    /// resuming any verified part already on disk, re-dialing when the seller goes away, and reporting progress.
    /// </summary>
    public async Task<FetchStatus> FetchAsync(PeerId seller, string contentId, string orderId, string? outPath, Action<FetchStatus> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(progress);
        Directory.CreateDirectory(downloadsDir);
        var partPath = Path.Combine(downloadsDir, contentId.Replace(':', '-') + ".part");
        var target = outPath is { Length: > 0 } ? Path.GetFullPath(outPath) : Path.Combine(downloadsDir, contentId.Replace(':', '-'));
        var deadline = Stopwatch.StartNew();
        var request = new ContentRequest { ContentId = contentId, OrderId = orderId };
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var (manifest, link) = await dialer.InvokeAsync(seller, async (client, ct) => await client.GetManifestAsync(request, cancellationToken: ct), cancellationToken);
                if (ContentManifests.Check(manifest, contentId) is { } problem)
                {
                    throw Refuse.Corrupt(problem);
                }

                var (done, moved) = await FetchOnceAsync(seller, link, manifest, request, partPath, attempt, progress, cancellationToken);
                if (moved)
                {
                    // The link was upgraded (relayed to direct) mid-transfer: go on from the next chunk on the new link.
                    LogMoved(logger, contentId, done.ReceivedBytes);
                    continue;
                }

                File.Move(partPath, target, overwrite: true);
                var finished = done with { Done = true, File = target };
                progress(finished);
                return finished;
            }
            catch (Exception ex) when (IsRetryable(ex) && deadline.Elapsed < FetchPatience && !cancellationToken.IsCancellationRequested)
            {
                LogRetry(logger, contentId, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 250 * attempt)), cancellationToken);
            }
        }
    }

    /// <summary>
    /// One stream of chunks over <paramref name="link"/>, written and verified in order. When the
    /// dialer upgrades the link to the seller meanwhile, the stream stops after the chunks already
    /// received (all written, none asked twice of the file) and the result says it moved.
    /// </summary>
    private async Task<(FetchStatus Status, bool Moved)> FetchOnceAsync(PeerId seller, PeerLinkHandle link, ContentManifest manifest, ContentRequest request, string partPath, int attempt, Action<FetchStatus> progress, CancellationToken cancellationToken)
    {
        var path = link.Path == LinkPath.Direct ? "direct" : "relayed";
        await using var file = new FileStream(partPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        var verified = await VerifiedChunksAsync(file, manifest, cancellationToken);
        var resumedFrom = Math.Min((ulong)verified * manifest.ChunkSize, manifest.Size);
        file.SetLength((long)resumedFrom);
        file.Position = (long)resumedFrom;
        var status = new FetchStatus(resumedFrom, manifest.Size, resumedFrom, attempt, path, false, string.Empty, request.ContentId);
        progress(status);
        if (verified < manifest.ChunkHashes.Count)
        {
            // The network read runs ahead of hashing and writing by a few chunks, so the three overlap.
            var pending = System.Threading.Channels.Channel.CreateBounded<ContentChunk>(new System.Threading.Channels.BoundedChannelOptions(8) { SingleReader = true, SingleWriter = true });
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var moved = 0;
            void OnUpgraded(object? sender, PeerLinkHandle upgraded)
            {
                if (upgraded.Peer.Equals(seller) && !ReferenceEquals(upgraded, link) && Interlocked.Exchange(ref moved, 1) == 0)
                {
                    stop.Cancel();
                }
            }

            dialer.LinkUpgraded += OnUpgraded;
            using var unsubscribe = new Unsubscribe(() => dialer.LinkUpgraded -= OnUpgraded);
            using var call = link.Client.Fetch(new ContentRequest(request) { FromChunk = (uint)verified }, cancellationToken: stop.Token);
            var receiving = Task.Run(
                async () =>
                {
                    try
                    {
                        await foreach (var chunk in call.ResponseStream.ReadAllAsync(stop.Token))
                        {
                            await pending.Writer.WriteAsync(chunk, stop.Token);
                        }

                        pending.Writer.Complete();
                    }
                    catch (Exception ex)
                    {
                        pending.Writer.Complete(ex);
                    }
                },
                CancellationToken.None);
            var next = verified;
            try
            {
                await foreach (var chunk in pending.Reader.ReadAllAsync(cancellationToken))
                {
                    if (chunk.Index != next || chunk.Data.Length != ContentManifests.ChunkLength(manifest, next)
                        || !SHA256.HashData(chunk.Data.Span).AsSpan().SequenceEqual(manifest.ChunkHashes[next].Span))
                    {
                        throw Refuse.Corrupt($"chunk {chunk.Index} from the seller does not match the manifest; the download stops at the last good chunk");
                    }

                    await file.WriteAsync(chunk.Data.Memory, cancellationToken);
                    next++;
                    status = status with { ReceivedBytes = (ulong)file.Position };
                    progress(status);
                }
            }
            catch (Exception ex) when (Volatile.Read(ref moved) == 1 && !cancellationToken.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                // Every chunk received before the move is written; the rest comes over the new link.
                if (next < manifest.ChunkHashes.Count)
                {
                    await file.FlushAsync(cancellationToken);
                    return (status, true);
                }
            }
            finally
            {
                await stop.CancelAsync();
                await receiving;
            }

            if (next != manifest.ChunkHashes.Count)
            {
                throw new IOException($"the seller ended the stream after chunk {next} of {manifest.ChunkHashes.Count}");
            }
        }

        await file.FlushAsync(cancellationToken);
        file.Flush(flushToDisk: true);
        return (status with { ReceivedBytes = manifest.Size }, false);
    }

    private static async Task<int> VerifiedChunksAsync(FileStream file, ContentManifest manifest, CancellationToken cancellationToken)
    {
        var buffer = new byte[manifest.ChunkSize];
        var count = 0;
        file.Position = 0;
        while (count < manifest.ChunkHashes.Count)
        {
            var length = ContentManifests.ChunkLength(manifest, count);
            if (file.Length - file.Position < length)
            {
                break;
            }

            await file.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken);
            if (!SHA256.HashData(buffer.AsSpan(0, length)).AsSpan().SequenceEqual(manifest.ChunkHashes[count].Span))
            {
                break;
            }

            count++;
        }

        return count;
    }

    private ContentRow Authorize(ContentRequest request, PeerId caller)
    {
        var content = store.GetContent(request.ContentId) ?? throw Refuse.NotFound($"this peer does not serve {request.ContentId}");
        if (content.Free)
        {
            return content;
        }

        var order = string.IsNullOrEmpty(request.OrderId) ? null : store.GetOrder(request.OrderId);
        return order is { Role: "seller", State: "accepted" or "completed" } && order.Counterparty == caller.ToString() && order.ContentId == request.ContentId
            ? content
            : throw Refuse.NotAllowed("no accepted order of yours covers this content: order it and wait for the seller to accept");
    }

    private static FileStream OpenServed(ContentRow content, ContentManifest manifest)
    {
        try
        {
            var file = new FileStream(content.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
            if ((ulong)file.Length != manifest.Size)
            {
                file.Dispose();
                throw Refuse.WrongState("the seller's file changed since it was published; the seller must publish it again");
            }

            return file;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            throw Refuse.WrongState("the seller no longer has the file it published");
        }
    }

    private static bool IsRetryable(Exception ex) =>
        ex is PeerUnreachableException or IOException or HttpRequestException || (ex is RpcException rpc && (PeerDialer.IsTransportFailure(rpc) || rpc.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Cancelled));

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetch of {ContentId} moves to the upgraded (direct) link after {Bytes} bytes")]
    private static partial void LogMoved(ILogger logger, string contentId, ulong bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetch of {ContentId}: attempt {Attempt} stopped ({Reason}); resuming")]
    private static partial void LogRetry(ILogger logger, string contentId, int attempt, string reason);
}

/// <summary>Runs an action on dispose (an event unsubscription at the end of a scope).</summary>
internal sealed class Unsubscribe(Action action) : IDisposable
{
    public void Dispose() => action();
}
