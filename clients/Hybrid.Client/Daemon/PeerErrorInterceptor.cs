using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Envelopes;
using Microsoft.Extensions.Logging;

namespace Hybrid.Client.Daemon;

/// <summary>
/// Turns the daemon's own failures into statuses a caller can act on, never <c>Unknown</c>. Toward
/// remote peers (the peer host) a fault of this daemon's own is a sentence written for them, with
/// the detail (paths, SQL, exception text) logged here, never sent; toward the local user (the
/// control socket) the detail is theirs to see.
/// </summary>
public abstract partial class DaemonErrorInterceptor(ILogger logger, bool remote) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return GuardAsync(context, () => continuation(request, context));
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return GuardAsync(context, () => continuation(request, responseStream, context));
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return GuardAsync(context, () => continuation(requestStream, responseStream, context));
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        return GuardAsync(context, () => continuation(requestStream, context));
    }

    /// <summary>Trailer of an exhausted budget's refusal: how many milliseconds to wait before trying again.</summary>
    public const string RetryAfterTrailer = "retry-after-ms";

    /// <summary>Runs a call of any kind; what it throws reaches the caller as the status <see cref="Map"/> gives it.</summary>
    private async Task GuardAsync(ServerCallContext context, Func<Task> call) =>
        await GuardAsync(context, async () =>
        {
            await call();
            return true;
        });

    /// <inheritdoc cref="GuardAsync(ServerCallContext, Func{Task})"/>
    private async Task<T> GuardAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return await call();
        }
        catch (Exception ex) when (Map(ex, context.Method) is { } status)
        {
            throw Fault(ex, status, context);
        }
    }

    private static RpcException Fault(Exception ex, Status status, ServerCallContext context)
    {
        if (ex is RefusedException { RetryAfter: { } after })
        {
            context.ResponseTrailers.Add(RetryAfterTrailer, ((long)after.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return new RpcException(status);
    }

    /// <summary>The status of a domain refusal: its sentence was written for whoever asked.</summary>
    public static Status StatusOf(RefusedException refused)
    {
        ArgumentNullException.ThrowIfNull(refused);
        var code = refused.Reason switch
        {
            Refusal.Invalid => StatusCode.InvalidArgument,
            Refusal.NotFound => StatusCode.NotFound,
            Refusal.Conflict => StatusCode.AlreadyExists,
            Refusal.NotAllowed => StatusCode.PermissionDenied,
            Refusal.WrongState => StatusCode.FailedPrecondition,
            Refusal.Exhausted => StatusCode.ResourceExhausted,
            Refusal.OutOfRange => StatusCode.OutOfRange,
            Refusal.Corrupt => StatusCode.DataLoss,
            _ => StatusCode.Unavailable,
        };
        return new Status(code, refused.Message);
    }

    private Status? Map(Exception ex, string method)
    {
        switch (ex)
        {
            case RpcException:
                return null;
            case RefusedException refused:
                return StatusOf(refused);
            case PeerKeyMismatchException:
                return new Status(StatusCode.PermissionDenied, ex.Message);
            case EnvelopeRejectedException:
                return new Status(StatusCode.InvalidArgument, ex.Message);
            case CryptographicException or Google.Protobuf.InvalidProtocolBufferException:
                return new Status(StatusCode.InvalidArgument, remote ? "the request could not be read or does not verify" : ex.Message);
            case OperationCanceledException:
                return new Status(StatusCode.Cancelled, "cancelled");
        }

        if (remote)
        {
            LogFault(logger, ex, method);
            return ex switch
            {
                PeerUnreachableException or IOException or HttpRequestException => new Status(StatusCode.Unavailable, "this peer cannot serve that right now; try again later"),
                UnauthorizedAccessException => new Status(StatusCode.PermissionDenied, "this peer does not serve that"),
                _ => new Status(StatusCode.Internal, "this peer could not handle the request; its owner can find the reason in the daemon's log"),
            };
        }

        return ex switch
        {
            PeerUnreachableException or IOException or HttpRequestException => new Status(StatusCode.Unavailable, ex.Message),
            UnauthorizedAccessException => new Status(StatusCode.PermissionDenied, ex.Message),
            _ => new Status(StatusCode.Internal, $"{ex.GetType().Name}: {ex.Message}"),
        };
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} from a remote peer failed")]
    private static partial void LogFault(ILogger logger, Exception ex, string method);
}

/// <summary>The peer host's mapping: remote peers get a status and a sentence, never internal detail.</summary>
public sealed class PeerErrorInterceptor(ILogger<PeerErrorInterceptor> logger) : DaemonErrorInterceptor(logger, remote: true);

/// <summary>The control socket's mapping: the local user sees the detail.</summary>
public sealed class ControlErrorInterceptor(ILogger<ControlErrorInterceptor> logger) : DaemonErrorInterceptor(logger, remote: false);
