using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>A supernode whose relay splices links on its byte port, with the smallest per-link budget.</summary>
public sealed class RelayPortFixture() : SupernodeProcessFixture(
    "--Supernode:HeartbeatInterval=00:00:00.500", "--Supernode:SessionTimeout=00:00:05", "--Supernode:RelayBytesPerLink=1048576");

/// <summary>
/// The relay's byte port, spoken to as a peer would and as an attacker would: a paired link's two
/// tokens are spliced, anything else is closed, a peer that does not come leaves both in frames,
/// and the link's byte budget holds on the splice too.
/// </summary>
public sealed class RelayPortTests(RelayPortFixture fixture) : IClassFixture<RelayPortFixture>
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private Protocol.Api.SupernodeClients Client => fixture.Node.Client;

    private string Host => new Uri(fixture.Node.GrpcUrl).Host;

    [Fact]
    public async Task BothPeersOfAPairedLinkAreSplicedAndEachHearsTheOther()
    {
        await using var link = await PairedLink.OpenAsync(Client, Patience);
        var (dialer, target) = await SplicedAsync(link);
        using var dialerSocket = dialer;
        using var targetSocket = target;

        await dialer.SendAsync("hello from the dialer"u8.ToArray(), SocketFlags.None);
        Assert.Equal("hello from the dialer", await ReadTextAsync(target, 21));
        await target.SendAsync("and back"u8.ToArray(), SocketFlags.None);
        Assert.Equal("and back", await ReadTextAsync(dialer, 8));

        // Closing one side ends the link for the other.
        dialer.Dispose();
        Assert.Equal(-1, await ReadByteAsync(target));
    }

    [Fact]
    public async Task AReusedTokenAWrongTokenAndAnotherVersionAreClosedWhileTheLinkStillSplices()
    {
        await using var link = await PairedLink.OpenAsync(Client, Patience);
        var port = link.DialerOffer.Port;
        using var dialer = await PresentAsync(link.DialerOffer);

        using (var again = await PresentAsync(link.DialerOffer))
        {
            Assert.Equal(-1, await ReadByteAsync(again));
        }

        using (var wrong = await PresentAsync(new RelaySocket { Port = port, Token = ByteString.CopyFrom(new byte[16]) }))
        {
            Assert.Equal(-1, await ReadByteAsync(wrong));
        }

        using (var otherVersion = await ConnectAsync(port))
        {
            await otherVersion.SendAsync(new byte[] { 9 }.Concat(link.TargetOffer.Token.ToByteArray()).ToArray(), SocketFlags.None);
            Assert.Equal(-1, await ReadByteAsync(otherVersion));
        }

        using var target = await PresentAsync(link.TargetOffer);
        Assert.Equal(0x53, await ReadByteAsync(dialer));
        Assert.Equal(0x53, await ReadByteAsync(target));
    }

    [Fact]
    public async Task ASilentOrHalfSentHelloIsClosedAfterTheSpliceWait()
    {
        using var silent = await ConnectAsync(await PortAsync());
        using var half = await ConnectAsync(await PortAsync());
        await half.SendAsync(new byte[] { 1, 2, 3 }, SocketFlags.None);

        Assert.Equal(-1, await ReadByteAsync(silent));
        Assert.Equal(-1, await ReadByteAsync(half));
    }

    [Fact]
    public async Task WhenOnePeerDoesNotComeBothGetTheLinkInFramesOverTheirCalls()
    {
        await using var link = await PairedLink.OpenAsync(Client, Patience);
        using var dialer = await PresentAsync(link.DialerOffer);

        // The target never connects: after the splice wait the dialer's socket is closed and both calls hear "accept".
        Assert.Equal(-1, await ReadByteAsync(dialer));
        Assert.Equal(RelayFrame.KindOneofCase.Accept, (await link.NextAsync(link.Dialer)).KindCase);
        Assert.Equal(RelayFrame.KindOneofCase.Accept, (await link.NextAsync(link.Target)).KindCase);
        await link.Dialer.RequestStream.WriteAsync(new RelayFrame { Data = ByteString.CopyFromUtf8("in a frame") });
        Assert.Equal("in a frame", (await link.NextAsync(link.Target)).Data.ToStringUtf8());
    }

    [Fact]
    public async Task ASplicedLinkIsCutAtItsByteBudget()
    {
        await using var link = await PairedLink.OpenAsync(Client, Patience);
        var (dialer, target) = await SplicedAsync(link);
        using var dialerSocket = dialer;
        using var targetSocket = target;

        // The budget is 1 MiB for the link: the dialer sends 3 MiB while the target drains; the target
        // receives no more than the budget, then both sockets are closed.
        var sending = Task.Run(async () =>
        {
            var chunk = new byte[64 * 1024];
            for (var i = 0; i < 48; i++)
            {
                await dialer.SendAsync(chunk, SocketFlags.None);
            }
        });
        long received = 0;
        var buffer = new byte[64 * 1024];
        using var deadline = new CancellationTokenSource(Patience);
        int n;
        while ((n = await target.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
        {
            received += n;
        }

        Assert.InRange(received, 512 * 1024, 1024 * 1024);
        Assert.Equal(-1, await ReadByteAsync(dialer));
        await sending.WaitAsync(Patience).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        await Eventually.TrueAsync(async () => await fixture.Node.MetricAsync("hybrid_relay_links_total{outcome=\"cut_budget\"}") >= 1, Patience, "the supernode to count a link cut at its budget");
    }

    /// <summary>The relay port's number, as a paired link is offered it.</summary>
    private async Task<int> PortAsync()
    {
        await using var link = await PairedLink.OpenAsync(Client, Patience);
        return link.DialerOffer.Port;
    }

    /// <summary>Both peers present their tokens; both hear that the link is spliced.</summary>
    private async Task<(Socket Dialer, Socket Target)> SplicedAsync(PairedLink link)
    {
        var dialer = await PresentAsync(link.DialerOffer);
        var target = await PresentAsync(link.TargetOffer);
        Assert.Equal(0x53, await ReadByteAsync(dialer));
        Assert.Equal(0x53, await ReadByteAsync(target));
        return (dialer, target);
    }

    private async Task<Socket> ConnectAsync(int port)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(Host, port);
        return socket;
    }

    private async Task<Socket> PresentAsync(RelaySocket offer)
    {
        var socket = await ConnectAsync(offer.Port);
        await socket.SendAsync(new byte[] { 1 }.Concat(offer.Token.ToByteArray()).ToArray(), SocketFlags.None);
        return socket;
    }

    /// <summary>The next byte, or -1 when the supernode closed the socket; fails if neither happens in time.</summary>
    private static async Task<int> ReadByteAsync(Socket socket)
    {
        var one = new byte[1];
        using var deadline = new CancellationTokenSource(Patience);
        try
        {
            return await socket.ReceiveAsync(one, SocketFlags.None, deadline.Token) == 0 ? -1 : one[0];
        }
        catch (SocketException)
        {
            return -1;
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the relay port neither sent a byte nor closed the socket within {Patience.TotalSeconds} s");
            throw;
        }
    }

    private static async Task<string> ReadTextAsync(Socket socket, int length)
    {
        var buffer = new byte[length];
        using var deadline = new CancellationTokenSource(Patience);
        for (var read = 0; read < length;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, deadline.Token);
            Assert.True(n > 0, $"the link closed after {read} of {length} bytes");
            read += n;
        }

        return System.Text.Encoding.UTF8.GetString(buffer);
    }

    /// <summary>Two sessions and a relayed link between them, paired by the supernode: each side's socket offer in hand.</summary>
    private sealed class PairedLink : IAsyncDisposable
    {
        private readonly PeerIdentity _dialerIdentity;
        private readonly PeerIdentity _targetIdentity;
        private readonly LiveSession _dialerSession;
        private readonly LiveSession _targetSession;
        private readonly TimeSpan _patience;

        private PairedLink(PeerIdentity dialerIdentity, PeerIdentity targetIdentity, LiveSession dialerSession, LiveSession targetSession, TimeSpan patience)
        {
            (_dialerIdentity, _targetIdentity, _dialerSession, _targetSession, _patience) = (dialerIdentity, targetIdentity, dialerSession, targetSession, patience);
        }

        public AsyncDuplexStreamingCall<RelayFrame, RelayFrame> Dialer { get; private set; } = null!;

        public AsyncDuplexStreamingCall<RelayFrame, RelayFrame> Target { get; private set; } = null!;

        public RelaySocket DialerOffer { get; private set; } = null!;

        public RelaySocket TargetOffer { get; private set; } = null!;

        public static async Task<PairedLink> OpenAsync(Protocol.Api.SupernodeClients client, TimeSpan patience)
        {
            var (dialerIdentity, targetIdentity) = (PeerIdentity.Generate(), PeerIdentity.Generate());
            var link = new PairedLink(dialerIdentity, targetIdentity,
                await LiveSession.OpenAsync(client, dialerIdentity, Heartbeat), await LiveSession.OpenAsync(client, targetIdentity, Heartbeat), patience);
            var now = DateTimeOffset.UtcNow;
            link.Dialer = client.Relay.Relay(link._dialerSession.Token);
            await link.Dialer.RequestStream.WriteAsync(new RelayFrame
            {
                Open = SignedEnvelopes.Sign(dialerIdentity, EnvelopeKinds.RelayRequest, 1, new RelayRequest { Target = targetIdentity.Id.ToString() }, now, now.AddMinutes(1)),
            });
            using var deadline = new CancellationTokenSource(patience);
            SupernodeEvent offer;
            do
            {
                offer = await link._targetSession.Events.Reader.ReadAsync(deadline.Token);
            }
            while (offer.KindCase != SupernodeEvent.KindOneofCase.RelayOffer);

            link.Target = client.Relay.Relay(link._targetSession.Token);
            await link.Target.RequestStream.WriteAsync(new RelayFrame { Accept = offer.RelayOffer.LinkId });
            link.DialerOffer = Expect(await link.NextAsync(link.Dialer));
            link.TargetOffer = Expect(await link.NextAsync(link.Target));
            Assert.Equal(link.DialerOffer.Port, link.TargetOffer.Port);
            Assert.NotEqual(link.DialerOffer.Token, link.TargetOffer.Token);
            return link;
        }

        public async Task<RelayFrame> NextAsync(AsyncDuplexStreamingCall<RelayFrame, RelayFrame> call)
        {
            using var deadline = new CancellationTokenSource(_patience);
            Assert.True(await call.ResponseStream.MoveNext(deadline.Token), "the relay ended the call");
            return call.ResponseStream.Current;
        }

        public async ValueTask DisposeAsync()
        {
            Dialer?.Dispose();
            Target?.Dispose();
            await _dialerSession.DisposeAsync();
            await _targetSession.DisposeAsync();
            _dialerIdentity.Dispose();
            _targetIdentity.Dispose();
        }

        private static RelaySocket Expect(RelayFrame frame)
        {
            Assert.Equal(RelayFrame.KindOneofCase.Socket, frame.KindCase);
            return frame.Socket;
        }
    }
}
