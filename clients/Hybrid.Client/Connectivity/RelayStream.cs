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

    private readonly AsyncDuplexStreamingCall<RelayFrame, RelayFrame> _call;
    private readonly Channel<byte[]> _outgoing = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(64) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Task _sending;
    private ReadOnlyMemory<byte> _pending;
    private Exception? _sendFailure;
    private bool _ended;

    /// <summary>Wraps a Relay call whose first frame has already been exchanged.</summary>
    public RelayStream(AsyncDuplexStreamingCall<RelayFrame, RelayFrame> call)
    {
        _call = call;
        _sending = Task.Run(SendAsync);
    }

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
            if (_ended)
            {
                return 0;
            }

            try
            {
                if (!await _call.ResponseStream.MoveNext(cancellationToken))
                {
                    _ended = true;
                    return 0;
                }
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Cancelled or StatusCode.Unavailable or StatusCode.Internal)
            {
                throw new IOException($"the relay closed the link ({ex.StatusCode})", ex);
            }

            var frame = _call.ResponseStream.Current;
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

                await _call.RequestStream.WriteAsync(new RelayFrame { Data = data });
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
            _call.Dispose();
            _sending.Wait(TimeSpan.FromSeconds(5));
        }

        base.Dispose(disposing);
    }
}
