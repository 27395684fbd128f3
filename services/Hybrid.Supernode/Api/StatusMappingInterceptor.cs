using Grpc.Core;
using Grpc.Core.Interceptors;
using Hybrid.Protocol.Envelopes;
using Microsoft.Data.Sqlite;
using Orleans.Storage;
using StackExchange.Redis;

namespace Hybrid.Supernode.Api;

/// <summary>
/// Turns whatever a handler throws into a specific gRPC status: cluster and storage faults become
/// <c>Unavailable</c> (clients retry), refused envelopes their own status, and nothing ends as <c>Unknown</c>.
/// </summary>
public sealed partial class StatusMappingInterceptor(ILogger<StatusMappingInterceptor> logger, Cluster.PauseFence fence, Ops.SupernodeMetrics metrics) : Interceptor
{
    private void ThrowIfFenced()
    {
        if (fence.Fenced)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "this supernode was frozen longer than the cluster's failure detection and is restarting; use another supernode"));
        }
    }

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ThrowIfFenced();
        try
        {
            return await continuation(request, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Map(ex, context);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ThrowIfFenced();
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Map(ex, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ThrowIfFenced();
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Map(ex, context);
        }
    }

    private RpcException Map(Exception ex, ServerCallContext context)
    {
        switch (ex)
        {
            case EnvelopeRejectedException rejected:
                return new RpcException(new Status(EnvelopeStatus.For(rejected.Fault), rejected.Message));
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                return new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled"));
            case IOException when context.CancellationToken.IsCancellationRequested:
                // The peer reset its stream or dropped its connection mid-call (a handshake given up,
                // a client gone): nothing went wrong here, and under a reconnecting herd these are many.
                return new RpcException(new Status(StatusCode.Cancelled, "the peer ended the call"));
            case OrleansException or TimeoutException or RedisException or SqliteException or InconsistentStateException or OperationCanceledException:
                LogTransient(logger, context.Method, ex.GetType().Name, ex.Message);
                metrics.CallsUnavailable.WithLabels(context.Method, ex.GetType().Name).Inc();
                return new RpcException(new Status(StatusCode.Unavailable, "the index is briefly unavailable (a supernode may have left the cluster); retry shortly"));
            default:
                LogUnexpected(logger, ex, context.Method);
                return new RpcException(new Status(StatusCode.Internal, $"internal error in {context.Method}; the supernode logged it"));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} failed transiently ({Type}): {Reason}")]
    private static partial void LogTransient(ILogger logger, string method, string type, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Method} failed unexpectedly")]
    private static partial void LogUnexpected(ILogger logger, Exception ex, string method);
}

/// <summary>The gRPC status for each way a signed envelope is refused.</summary>
public static class EnvelopeStatus
{
    public static StatusCode For(EnvelopeFault fault) => fault switch
    {
        EnvelopeFault.Malformed or EnvelopeFault.WrongKind => StatusCode.InvalidArgument,
        EnvelopeFault.BadSignature or EnvelopeFault.WrongSigner => StatusCode.PermissionDenied,
        EnvelopeFault.Expired or EnvelopeFault.NotYetValid => StatusCode.FailedPrecondition,
        EnvelopeFault.Replayed => StatusCode.AlreadyExists,
        _ => StatusCode.InvalidArgument,
    };
}
