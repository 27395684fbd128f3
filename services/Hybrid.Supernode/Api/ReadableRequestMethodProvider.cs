using System.Reflection;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace Hybrid.Supernode.Api;

/// <summary>
/// Binds every gRPC service the way grpc-dotnet's own binder does, except that each request
/// deserializer answers a body that does not parse with <c>InvalidArgument</c> naming the message.
/// grpc-dotnet reads the request before any interceptor runs, so without this a malformed body
/// ends as <c>Unknown</c> on unary calls and <c>Internal</c> on streams.
/// </summary>
public sealed class ReadableRequestMethodProvider<TService> : IServiceMethodProvider<TService>
    where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var bind = typeof(TService).GetCustomAttribute<BindServiceMethodAttribute>(inherit: true);
        if (bind is null)
        {
            return;
        }

        var bindMethod = bind.BindType.GetMethod(bind.BindMethodName, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static, [typeof(ServiceBinderBase), typeof(TService)])
            ?? bind.BindType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                .SingleOrDefault(m => m.Name == bind.BindMethodName && m.GetParameters() is [var b, var s] && b.ParameterType == typeof(ServiceBinderBase) && s.ParameterType.IsAssignableFrom(typeof(TService)))
            ?? throw new InvalidOperationException($"{bind.BindType} has no {bind.BindMethodName}(ServiceBinderBase, {typeof(TService).Name})");
        bindMethod.Invoke(null, [new Binder(context), null]);
    }

    /// <summary>A deserializer that turns any failure to read a body into a readable InvalidArgument.</summary>
    internal static Marshaller<T> Readable<T>(Marshaller<T> marshaller)
    {
        var name = typeof(T).Name;
        return new Marshaller<T>(marshaller.ContextualSerializer, context =>
        {
            try
            {
                return marshaller.ContextualDeserializer(context);
            }
            catch (Exception ex) when (ex is not RpcException)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"the request body could not be read as a {name} message: {ex.Message}"));
            }
        });
    }

    private static Method<TRequest, TResponse> Readable<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class
        where TResponse : class =>
        new(method.Type, method.ServiceName, method.Name, Readable(method.RequestMarshaller), method.ResponseMarshaller);

    private sealed class Binder(ServiceMethodProviderContext<TService> context) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
        {
            var (invoker, metadata) = Invoker<UnaryServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(TRequest), typeof(ServerCallContext));
            context.AddUnaryMethod(Readable(method), metadata, invoker);
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler)
        {
            var (invoker, metadata) = Invoker<ClientStreamingServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext));
            context.AddClientStreamingMethod(Readable(method), metadata, invoker);
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler)
        {
            var (invoker, metadata) = Invoker<ServerStreamingServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext));
            context.AddServerStreamingMethod(Readable(method), metadata, invoker);
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler)
        {
            var (invoker, metadata) = Invoker<DuplexStreamingServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext));
            context.AddDuplexStreamingMethod(Readable(method), metadata, invoker);
        }

        // The generated base declares each method virtual; the delegate dispatches to the override.
        private static (TDelegate Invoker, List<object> Metadata) Invoker<TDelegate>(string name, params Type[] parameters)
            where TDelegate : Delegate
        {
            var method = typeof(TService).GetMethod(name, BindingFlags.Public | BindingFlags.Instance, parameters)
                ?? throw new InvalidOperationException($"{typeof(TService).Name} has no method {name}");
            List<object> metadata = [.. typeof(TService).GetCustomAttributes(inherit: true), .. method.GetCustomAttributes(inherit: true)];
            return ((TDelegate)Delegate.CreateDelegate(typeof(TDelegate), method), metadata);
        }
    }
}

/// <summary>Registers <see cref="ReadableRequestMethodProvider{TService}"/> in place of grpc-dotnet's binder.</summary>
public static class ReadableRequests
{
    public static IServiceCollection AddReadableRequests(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var defaults = services.Where(d => d.ServiceType == typeof(IServiceMethodProvider<>) && d.ImplementationType?.Name == "BinderServiceMethodProvider`1").ToList();
        if (defaults.Count == 0)
        {
            throw new InvalidOperationException("AddReadableRequests must follow AddGrpc (grpc-dotnet's binder was not found)");
        }

        foreach (var d in defaults)
        {
            services.Remove(d);
        }

        services.AddSingleton(typeof(IServiceMethodProvider<>), typeof(ReadableRequestMethodProvider<>));
        return services;
    }
}
