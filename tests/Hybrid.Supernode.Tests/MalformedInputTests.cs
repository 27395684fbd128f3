using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// Every method the supernode serves, found by server reflection, is sent bodies that are not
/// protobuf (truncated, bad length prefixes, invalid tags, random bytes): each gets a status a
/// client can act on, and the supernode goes on serving honest peers.
/// </summary>
public sealed class MalformedInputTests : IAsyncLifetime, IDisposable
{
    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);

    // Messages whose type the test can parse, to tell random bodies that parse from those that do not.
    private static readonly TypeRegistry Types = TypeRegistry.FromFiles(
        SupernodeReflection.Descriptor,
        FederationReflection.Descriptor,
        Grpc.Health.V1.HealthReflection.Descriptor,
        ReflectionReflection.Descriptor,
        Grpc.Reflection.V1.ReflectionReflection.Descriptor);

    // Bodies no protobuf parser accepts, whatever the message type.
    private static readonly (string Name, byte[] Body)[] Unreadable =
    [
        ("length prefix past the end", [0x0A, 0x05, 0x41]),
        ("length prefix beyond any size", [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x41]),
        ("truncated varint", [0x08, 0xFF]),
        ("field number zero", [0x00, 0x01]),
        ("wire type 7", [0x0F, 0x01]),
        ("end group without start", [0x0C]),
        ("truncated fixed64", [0x09, 0x01, 0x02]),
        ("nested message cut short", [0x12, 0x04, 0x0A, 0x09, 0x41, 0x42]),
    ];

    private readonly TempDir _temp = new();
    private SupernodeProcess _node = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        // Generous request limits: this test is about parsing, not about rate limiting.
        _node = await SupernodeProcess.StartAsync(_temp.Sub("data"), "--Supernode:RequestsPerSecond=100000", "--Supernode:RequestBurst=100000");
        _channel = GrpcChannel.ForAddress(_node.GrpcUrl);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _node.DisposeAsync();
        _temp.Dispose();
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task EveryMethodAnswersUnreadableBodiesWithInvalidArgumentAndKeepsServing()
    {
        var methods = await DiscoverAsync();
        Assert.Contains(methods, m => m.Path == "/hybrid.v1.ListingsApi/PublishListing");
        Assert.Contains(methods, m => m.Path == "/hybrid.v1.DirectoryApi/Session" && m.ClientStreaming && m.ServerStreaming);

        var random = new Random(20261129);
        var failures = new List<string>();
        var tried = 0;
        foreach (var method in methods)
        {
            var parser = (Types.Find(method.InputType) ?? throw new InvalidOperationException($"the test does not know {method.InputType}")).Parser;
            var bodies = Unreadable.Select(u => (u.Name, u.Body)).ToList();
            for (var i = 0; i < 24; i++)
            {
                var body = new byte[random.Next(1, 200)];
                random.NextBytes(body);
                bodies.Add(($"random #{i}", body));
            }

            foreach (var (name, body) in bodies)
            {
                var readable = Parses(parser, body);
                var status = await CallAsync(method, body);
                tried++;
                if (status is StatusCode.Unknown or StatusCode.Internal or StatusCode.DeadlineExceeded
                    || (!readable && status != StatusCode.InvalidArgument))
                {
                    failures.Add($"{method.Path} with {name} ({(readable ? "parses" : "does not parse")}): {status}");
                }
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {tried} calls got an unclear status:{Environment.NewLine}{string.Join(Environment.NewLine, failures)}");
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task AnUnreadableBodyNamesTheMessageItCouldNotRead()
    {
        var method = new Method<byte[], byte[]>(MethodType.Unary, "hybrid.v1.ListingsApi", "PublishListing", Raw, Raw);

        var ex = await Assert.ThrowsAsync<RpcException>(() => _channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)), [0x0A, 0x05, 0x41]).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("SignedEnvelope", ex.Status.Detail, StringComparison.Ordinal);
    }

    private static bool Parses(MessageParser parser, byte[] body)
    {
        try
        {
            parser.ParseFrom(body);
            return true;
        }
        catch (InvalidProtocolBufferException)
        {
            return false;
        }
    }

    private async Task<StatusCode> CallAsync(DiscoveredMethod m, byte[] body)
    {
        var invoker = _channel.CreateCallInvoker();
        var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(15));
        try
        {
            if (!m.ClientStreaming && !m.ServerStreaming)
            {
                await invoker.AsyncUnaryCall(m.Method(MethodType.Unary), null, options, body).ResponseAsync;
                return StatusCode.OK;
            }

            if (!m.ClientStreaming)
            {
                using var serverStream = invoker.AsyncServerStreamingCall(m.Method(MethodType.ServerStreaming), null, options, body);
                // A readable request may start an endless stream (health Watch): its first answer is enough.
                await serverStream.ResponseStream.MoveNext();
                return StatusCode.OK;
            }

            using var call = invoker.AsyncDuplexStreamingCall(m.Method(MethodType.DuplexStreaming), null, options);
            await call.RequestStream.WriteAsync(body);
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext())
            {
            }

            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    private async Task<List<DiscoveredMethod>> DiscoverAsync()
    {
        var reflection = new ServerReflection.ServerReflectionClient(_channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = string.Empty });
        Assert.True(await call.ResponseStream.MoveNext());
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        foreach (var capability in new[] { "DirectoryApi", "ListingsApi", "RelayApi", "MailboxApi", "ReputationApi" })
        {
            Assert.Contains($"hybrid.v1.{capability}", services);
        }

        var methods = new List<DiscoveredMethod>();
        foreach (var service in services)
        {
            await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = service });
            Assert.True(await call.ResponseStream.MoveNext());
            var files = call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto.Select(FileDescriptorProto.Parser.ParseFrom);
            var declared = files.SelectMany(f => f.Service.Select(s => (Package: f.Package, Service: s)))
                .Single(s => $"{s.Package}.{s.Service.Name}" == service);
            methods.AddRange(declared.Service.Method.Select(m => new DiscoveredMethod(service, m.Name, m.InputType.TrimStart('.'), m.ClientStreaming, m.ServerStreaming)));
        }

        await call.RequestStream.CompleteAsync();
        return methods;
    }

    private async Task AssertStillServingAsync()
    {
        using var someone = PeerIdentity.Generate();
        var client = new Protocol.Api.SupernodeClients(_channel);
        using var session = await RawSession.OpenAsync(client);
        await session.SendHelloAsync(RawSession.Proof(someone, session.Challenge), RawSession.Profile(someone, "Still here", 1));
        Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await session.ReadAsync()).KindCase);
        Assert.True((await client.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = someone.Id.ToString() })).Online);
    }

    private sealed record DiscoveredMethod(string Service, string Name, string InputType, bool ClientStreaming, bool ServerStreaming)
    {
        public string Path => $"/{Service}/{Name}";

        public Method<byte[], byte[]> Method(MethodType type) => new(type, Service, Name, Raw, Raw);
    }
}
