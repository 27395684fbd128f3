using System.Threading.Channels;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Supernode.Tests.Infrastructure;

/// <summary>
/// An honest peer's session kept alive by heartbeats in the background, with every acknowledgement
/// and event recorded: tests assert on what that peer lived through while something else ran.
/// </summary>
internal sealed class LiveSession : IAsyncDisposable
{
    private readonly AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> _call;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _heartbeats;
    private readonly Task _reader;
    private readonly TimeSpan _interval;
    private long _sent;
    private long _acknowledged;

    private LiveSession(PeerIdentity identity, AsyncDuplexStreamingCall<SessionClientMessage, SessionServerMessage> call, string token, TimeSpan interval)
    {
        Identity = identity;
        _call = call;
        Token = new Metadata { { Protocol.Api.SupernodeClients.SessionHeader, token } };
        _interval = interval;
        _reader = Task.Run(ReadAsync);
        _heartbeats = Task.Run(BeatAsync);
    }

    public PeerIdentity Identity { get; }

    /// <summary>Metadata carrying the session token.</summary>
    public Metadata Token { get; }

    /// <summary>Events pushed over the session (relay offers, mail waiting, …).</summary>
    public Channel<SupernodeEvent> Events { get; } = Channel.CreateUnbounded<SupernodeEvent>();

    /// <summary>How the stream ended, if it did: null while the session is up.</summary>
    public string? Ended { get; private set; }

    public long Acknowledged => Interlocked.Read(ref _acknowledged);

    public static async Task<LiveSession> OpenAsync(Protocol.Api.SupernodeClients client, PeerIdentity identity, TimeSpan heartbeatInterval)
    {
        var call = client.Directory.Session();
        Assert.True(await call.ResponseStream.MoveNext(), "the supernode sent no challenge");
        var challenge = call.ResponseStream.Current.Challenge;
        await call.RequestStream.WriteAsync(new SessionClientMessage { Hello = new SessionHello { Proof = RawSession.Proof(identity, challenge), Profile = RawSession.Profile(identity, "Honest", (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) } });
        Assert.True(await call.ResponseStream.MoveNext(), "the supernode ended the session before its welcome");
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, call.ResponseStream.Current.KindCase);
        return new LiveSession(identity, call, call.ResponseStream.Current.Welcome.SessionToken, heartbeatInterval);
    }

    /// <summary>Waits until <paramref name="more"/> further heartbeats were acknowledged; fails if the session ended.</summary>
    public async Task AssertAliveForAsync(int more, TimeSpan timeout)
    {
        var target = Acknowledged + more;
        await Hybrid.Testing.Eventually.TrueAsync(
            () => Task.FromResult(Ended is null ? Acknowledged >= target : throw new InvalidOperationException($"the session ended: {Ended}")),
            timeout,
            $"{more} more heartbeat acknowledgements on {Identity.Id}'s session");
        Assert.Null(Ended);
    }

    private async Task BeatAsync()
    {
        try
        {
            using var timer = new PeriodicTimer(_interval);
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                await _call.RequestStream.WriteAsync(new SessionClientMessage { Heartbeat = new Heartbeat { Sequence = (ulong)Interlocked.Increment(ref _sent) } }, _stop.Token);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or RpcException or InvalidOperationException)
        {
            // Stopped, or the stream ended (the reader records how).
        }
    }

    private async Task ReadAsync()
    {
        try
        {
            while (await _call.ResponseStream.MoveNext(_stop.Token))
            {
                var message = _call.ResponseStream.Current;
                if (message.KindCase == SessionServerMessage.KindOneofCase.HeartbeatAck)
                {
                    Interlocked.Increment(ref _acknowledged);
                }
                else if (message.KindCase == SessionServerMessage.KindOneofCase.Event)
                {
                    Events.Writer.TryWrite(message.Event);
                }
            }

            Ended = "the supernode closed the stream";
        }
        catch (RpcException ex) when (!_stop.IsCancellationRequested)
        {
            Ended = $"{ex.StatusCode}: {ex.Status.Detail}";
        }
        catch (Exception ex) when (ex is OperationCanceledException or RpcException)
        {
            // Disposed.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_heartbeats, _reader).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _call.Dispose();
        _stop.Dispose();
    }
}
