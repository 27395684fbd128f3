using System.IO.Pipelines;
using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Hybrid.Client.Connectivity;

/// <summary>The peer host's second listener: connections that are streams, not accepted sockets.</summary>
public sealed class InProcessEndPoint : EndPoint
{
    /// <inheritdoc />
    public override string ToString() => "in-process";
}

/// <summary>
/// A Kestrel transport for connections handed in as streams: a relayed link (TLS records carried
/// in relay frames) or a socket from a hole punch, where this peer is the TLS server although it
/// did not accept the connection. Kestrel runs the same mutual TLS and HTTP/2 over them as over its
/// own socket, without a loopback hop (which cost two kernel copies of every relayed byte).
/// </summary>
public sealed class InProcessListener : IConnectionListenerFactory, IConnectionListenerFactorySelector, IConnectionListener
{
    /// <summary>Connections handed in and not yet accepted by Kestrel, at most.</summary>
    public const int Backlog = 64;

    private readonly Channel<HandedConnection> _incoming = Channel.CreateBounded<HandedConnection>(Backlog);
    private readonly InProcessEndPoint _endPoint = new();
    private long _ids;

    /// <inheritdoc />
    public EndPoint EndPoint => _endPoint;

    /// <summary>The endpoint to give Kestrel's Listen.</summary>
    public EndPoint ListenEndPoint => _endPoint;

    /// <inheritdoc />
    public bool CanBind(EndPoint endpoint) => endpoint is InProcessEndPoint;

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IConnectionListener>(this);

    /// <inheritdoc />
    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _incoming.Reader.ReadAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>
    /// Hands <paramref name="stream"/> to the peer host as a connection from <paramref name="remote"/>;
    /// completes when the host is done with it (or <paramref name="cancellationToken"/> ends it).
    /// </summary>
    /// <exception cref="InvalidOperationException">The host is not listening (stopped) or has <see cref="Backlog"/> connections waiting.</exception>
    public async Task ServeAsync(Stream stream, EndPoint? remote, CancellationToken cancellationToken)
    {
        var connection = new HandedConnection($"in-process-{Interlocked.Increment(ref _ids)}", stream, remote, _endPoint);
        if (!_incoming.Writer.TryWrite(connection))
        {
            await connection.DisposeAsync();
            throw new InvalidOperationException("the peer host is not taking connections now");
        }

        await using (cancellationToken.Register(connection.Abort))
        {
            await connection.Done;
        }
    }

    /// <inheritdoc />
    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _incoming.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _incoming.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    /// <summary>A stream as a Kestrel connection.</summary>
    private sealed class HandedConnection : ConnectionContext
    {
        private readonly Stream _stream;
        private readonly CancellationTokenSource _closed = new();
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _disposed;

        public HandedConnection(string id, Stream stream, EndPoint? remote, EndPoint local)
        {
            _stream = stream;
            ConnectionId = id;
            RemoteEndPoint = remote;
            LocalEndPoint = local;
            ConnectionClosed = _closed.Token;
            // Large reads: relay frames and punched sockets both deliver tens of KiB at a time.
            Transport = new Duplex(
                PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true)),
                PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024, leaveOpen: true)));
        }

        public Task Done => _done.Task;

        public override string ConnectionId { get; set; }

        public override IFeatureCollection Features { get; } = new FeatureCollection();

        public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

        public override IDuplexPipe Transport { get; set; }

        public override void Abort(ConnectionAbortedException abortReason)
        {
            if (Volatile.Read(ref _disposed) == 1)
            {
                return;
            }

            try
            {
                _closed.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Disposed meanwhile: already closed.
            }

            _stream.Dispose();
        }

        public override async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
            {
                await base.DisposeAsync();
                return;
            }

            await Transport.Input.CompleteAsync();
            await Transport.Output.CompleteAsync();
            await _stream.DisposeAsync();
            await _closed.CancelAsync();
            _closed.Dispose();
            _done.TrySetResult();
            await base.DisposeAsync();
        }
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
