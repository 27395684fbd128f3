using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// A byte stream carried in the data frames of a supernode Relay call. The dialer hands it to its
/// HTTP handler as the "socket", so TLS and HTTP/2 run over it end to end; the receiving daemon
/// pipes one into its own peer host's socket. The relay sees only the TLS records.
/// </summary>
public sealed class RelayStream : Stream
{
    /// <summary>Largest data frame written: under the supernode's message limit.</summary>
    public const int MaxFrameBytes = 64 * 1024;

    private readonly IAsyncStreamReader<RelayFrame> _incoming;
    private readonly IAsyncStreamWriter<RelayFrame> _writer;
    private readonly IDisposable? _owner;
    private readonly Channel<byte[]> _outgoing = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(64) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Task _sending;
    private ReadOnlyMemory<byte> _pending;
    private Exception? _sendFailure;
    private bool _isEnded;

    /// <summary>Wraps a Relay call whose first frame has already been exchanged.</summary>
    public RelayStream(AsyncDuplexStreamingCall<RelayFrame, RelayFrame> call)
        : this(call?.ResponseStream!, call?.RequestStream!, call)
    {
    }

    /// <summary>Wraps any duplex stream of data frames (the server side of a call, too); <paramref name="owner"/> is disposed with it.</summary>
    public RelayStream(IAsyncStreamReader<RelayFrame> incoming, IAsyncStreamWriter<RelayFrame> writer, IDisposable? owner)
    {
        ArgumentNullException.ThrowIfNull(incoming);
        ArgumentNullException.ThrowIfNull(writer);
        (_incoming, _writer, _owner) = (incoming, writer, owner);
        _sending = Task.Run(SendAsync);
    }

    /// <summary>Completes when the other side ended the stream (or it failed).</summary>
    public Task Ended => _ended.Task;

    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public override bool CanRead => true;

    /// <inheritdoc />
    public override bool CanWrite => true;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <inheritdoc />
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_pending.IsEmpty)
        {
            if (_isEnded)
            {
                return 0;
            }

            try
            {
                if (!await _incoming.MoveNext(cancellationToken))
                {
                    _isEnded = true;
                    _ended.TrySetResult();
                    return 0;
                }
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Cancelled or StatusCode.Unavailable or StatusCode.Internal)
            {
                _ended.TrySetResult();
                throw new IOException($"the relay closed the link ({ex.StatusCode})", ex);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
            {
                _ended.TrySetResult();
                throw;
            }

            var frame = _incoming.Current;
            if (frame.KindCase == RelayFrame.KindOneofCase.Data)
            {
                _pending = frame.Data.Memory;
            }
        }

        var count = Math.Min(buffer.Length, _pending.Length);
        _pending[..count].CopyTo(buffer);
        _pending = _pending[count..];
        return count;
    }

    /// <summary>
    /// Queues the bytes; a sender coalesces whatever is queued into frames of up to <see cref="MaxFrameBytes"/>.
    /// TLS writes one record (at most 16 KiB) at a time: sent one frame each, the relay would carry
    /// many small messages instead of a few large ones.
    /// </summary>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_sendFailure is { } failure)
        {
            throw new IOException($"the relay closed the link: {failure.Message}", failure);
        }

        try
        {
            await _outgoing.Writer.WriteAsync(buffer.ToArray(), cancellationToken);
        }
        catch (ChannelClosedException ex)
        {
            throw new IOException("the relay closed the link", _sendFailure ?? ex);
        }
    }

    private async Task SendAsync()
    {
        var batch = new List<byte[]>();
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync())
            {
                batch.Clear();
                var total = 0;
                while (total < MaxFrameBytes && _outgoing.Reader.TryRead(out var next))
                {
                    batch.Add(next);
                    total += next.Length;
                }

                ByteString data;
                if (batch.Count == 1)
                {
                    data = UnsafeByteOperations.UnsafeWrap(batch[0]);
                }
                else
                {
                    var joined = new byte[total];
                    var at = 0;
                    foreach (var part in batch)
                    {
                        part.CopyTo(joined, at);
                        at += part.Length;
                    }

                    data = UnsafeByteOperations.UnsafeWrap(joined);
                }

                await _writer.WriteAsync(new RelayFrame { Data = data });
            }
        }
        catch (Exception ex) when (ex is RpcException or InvalidOperationException or IOException or OperationCanceledException)
        {
            _sendFailure = ex;
            _outgoing.Writer.TryComplete(ex);
        }
    }

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    /// <inheritdoc />
    public override void Flush()
    {
    }

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _outgoing.Writer.TryComplete();
            _owner?.Dispose();
            _ended.TrySetResult();
            _sending.Wait(TimeSpan.FromSeconds(5));
        }

        base.Dispose(disposing);
    }
}
