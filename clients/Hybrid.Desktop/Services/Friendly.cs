using Grpc.Core;

namespace Hybrid.Desktop.Services;

/// <summary>Turns what can go wrong into one sentence a person can act on.</summary>
public static class Friendly
{
    /// <summary>The message to show for <paramref name="error"/>.</summary>
    public static string Message(Exception error) => error switch
    {
        RpcException { StatusCode: StatusCode.Unavailable } rpc when rpc.Status.DebugException is not null
            => "No supernode or daemon answered. Check your network connection; the app keeps retrying.",
        RpcException { StatusCode: StatusCode.Unavailable } rpc => $"Could not reach them right now: {rpc.Status.Detail}",
        RpcException { StatusCode: StatusCode.NotFound } rpc => $"Not found: {rpc.Status.Detail}",
        RpcException { StatusCode: StatusCode.InvalidArgument or StatusCode.OutOfRange } rpc => $"Please check your input: {rpc.Status.Detail}",
        RpcException { StatusCode: StatusCode.PermissionDenied or StatusCode.Unauthenticated } rpc => $"Not allowed: {rpc.Status.Detail}",
        RpcException { StatusCode: StatusCode.FailedPrecondition or StatusCode.AlreadyExists } rpc => rpc.Status.Detail,
        RpcException { StatusCode: StatusCode.ResourceExhausted } rpc => $"Too much at once: {rpc.Status.Detail}. Try again in a moment.",
        RpcException { StatusCode: StatusCode.DeadlineExceeded } => "That took too long. Try again.",
        RpcException rpc => $"Something went wrong: {rpc.Status.Detail}",
        ArgumentException or FormatException or InvalidOperationException or KeyNotFoundException => error.Message,
        IOException => $"A file could not be read or written: {error.Message}",
        _ => $"Something went wrong: {error.Message}",
    };
}
