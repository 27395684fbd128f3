using System.Net.Sockets;
using Grpc.Core;
using Hybrid.Protocol.Network;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// The byte path of a relayed link once the supernode has paired its two calls: spliced TCP on the
/// supernode's relay port when it offers one and this peer reaches it, else data frames over the call.
/// Either way the peers' TLS runs end to end through it.
/// </summary>
public static class RelayLinks
{
    /// <summary>How long connecting to the relay port and hearing the splice may take before this side falls back to frames.</summary>
    public static readonly TimeSpan SpliceTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Waits for the supernode's word on <paramref name="call"/> (dialer after its open, target after its accept) and returns the link's stream, which owns the call.</summary>
    public static async Task<Stream> AwaitAsync(AsyncDuplexStreamingCall<RelayFrame, RelayFrame> call, string supernodeUrl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        var frame = await NextAsync(call, supernodeUrl, cancellationToken);
        if (frame.KindCase == RelayFrame.KindOneofCase.Socket)
        {
            if (await TrySpliceAsync(supernodeUrl, frame.Socket, cancellationToken) is { } socket)
            {
                return new SplicedStream(socket, call);
            }

            frame = await NextAsync(call, supernodeUrl, cancellationToken);
        }

        if (frame.KindCase != RelayFrame.KindOneofCase.Accept)
        {
            throw new IOException($"the relay at {supernodeUrl} sent {frame.KindCase} where it opens a link");
        }

        return new RelayStream(call);
    }

    private static async Task<RelayFrame> NextAsync(AsyncDuplexStreamingCall<RelayFrame, RelayFrame> call, string supernodeUrl, CancellationToken cancellationToken) =>
        await call.ResponseStream.MoveNext(cancellationToken)
            ? call.ResponseStream.Current
            : throw new IOException($"the relay at {supernodeUrl} ended the link before it opened");

    /// <summary>Connects to the relay port, presents the token and waits for the splice; null when any of it fails in time.</summary>
    private static async Task<Socket?> TrySpliceAsync(string supernodeUrl, RelaySocket offer, CancellationToken cancellationToken)
    {
        if (offer.Port is <= 0 or > 65535 || offer.Token.Length != RelaySplice.TokenBytes || !Uri.TryCreate(supernodeUrl, UriKind.Absolute, out var uri))
        {
            return null;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(SpliceTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(uri.IdnHost, offer.Port, timeout.Token);
            var hello = new byte[1 + offer.Token.Length];
            hello[0] = RelaySplice.Version;
            offer.Token.Span.CopyTo(hello.AsSpan(1));
            await socket.SendAsync(hello, SocketFlags.None, timeout.Token);
            var verdict = new byte[1];
            if (await socket.ReceiveAsync(verdict, SocketFlags.None, timeout.Token) == 1 && verdict[0] == RelaySplice.Spliced)
            {
                return socket;
            }
        }
        catch (Exception ex) when (ex is SocketException or IOException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // Not reachable, refused or too slow: the supernode falls back to frames for both peers.
        }

        socket.Dispose();
        cancellationToken.ThrowIfCancellationRequested();
        return null;
    }

    /// <summary>The spliced socket as a stream; it holds the Relay call open (the link's control) and ends it when disposed.</summary>
    private sealed class SplicedStream(Socket socket, IDisposable call) : NetworkStream(socket, ownsSocket: true)
    {
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                call.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
