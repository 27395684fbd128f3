using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Hybrid.Client.Peers;
using Hybrid.Protocol.Envelopes;

namespace Hybrid.Client.Daemon;

/// <summary>Turns the daemon's own failures into statuses a caller can act on, never <c>Unknown</c>.</summary>
public sealed class PeerErrorInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        try
        {
            return await continuation(request, context);
        }
        catch (Exception ex) when (Map(ex) is { } status)
        {
            throw new RpcException(status);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (Map(ex) is { } status)
        {
            throw new RpcException(status);
        }
    }

    private static Status? Map(Exception ex) => ex switch
    {
        RpcException => null,
        PeerKeyMismatchException => new Status(StatusCode.PermissionDenied, ex.Message),
        PeerUnreachableException or IOException or HttpRequestException => new Status(StatusCode.Unavailable, ex.Message),
        EnvelopeRejectedException => new Status(StatusCode.InvalidArgument, ex.Message),
        CryptographicException or Google.Protobuf.InvalidProtocolBufferException => new Status(StatusCode.InvalidArgument, ex.Message),
        UnauthorizedAccessException => new Status(StatusCode.PermissionDenied, ex.Message),
        OperationCanceledException => new Status(StatusCode.Cancelled, "cancelled"),
        _ => new Status(StatusCode.Internal, $"{ex.GetType().Name}: {ex.Message}"),
    };
}
