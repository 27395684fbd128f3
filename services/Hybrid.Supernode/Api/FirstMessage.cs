using Grpc.Core;

namespace Hybrid.Supernode.Api;

/// <summary>
/// The first message of a bidirectional call (a session's hello, a relay's opening frame), read
/// within a deadline. A peer that closes or resets its stream before sending it has left, which is
/// no fault of this supernode's; one that holds the call open and sends nothing is told how long it
/// had. Every call that starts with such a read goes through here, so each ends the same way.
/// </summary>
internal static class FirstMessage
{
    /// <summary>
    /// Reads the first message of <paramref name="requests"/>, or null when the peer closed its
    /// stream without one. Throws <see cref="StatusCode.DeadlineExceeded"/> when nothing came within
    /// <paramref name="timeout"/>, and <see cref="StatusCode.Cancelled"/> when the peer reset its
    /// stream or lost its connection.
    /// </summary>
    /// <param name="requests">The call's request stream, not yet read.</param>
    /// <param name="timeout">How long the peer has to send it.</param>
    /// <param name="what">The message's name, for the peer's error: "hello", "relay frame".</param>
    /// <param name="aborted">The call's own token (cancelled when the peer goes).</param>
    public static async Task<T?> ReadAsync<T>(IAsyncStreamReader<T> requests, TimeSpan timeout, string what, CancellationToken aborted)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(requests);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        deadline.CancelAfter(timeout);
        try
        {
            return await requests.MoveNext(deadline.Token) ? requests.Current : null;
        }
        catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"no {what} within {timeout.TotalSeconds:0.#} s of the call opening; send it first"));
        }
        catch (IOException)
        {
            // The reset can reach this read before the call is marked aborted (Kestrel cancels a reset
            // call's token on the thread pool, after its body pipe fails): it is the peer leaving, not
            // an error, and is not left to the interceptor, which would log it as one.
            throw new RpcException(new Status(StatusCode.Cancelled, $"the stream closed before the {what}"));
        }
    }
}
