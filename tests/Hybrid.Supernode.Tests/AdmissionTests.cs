using System.Text.Json;
using Grpc.Core;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// New identities cost something: a proof-of-work stamp and a place in per-address and per-supernode
/// budgets; what an identity may store is bounded. Known identities are not charged again.
/// </summary>
public sealed class AdmissionTests : IAsyncLifetime, IDisposable
{
    private const int WorkBits = 12;
    private const int PerAddress = 3;
    private readonly TempDir _temp = new();
    private SupernodeProcess _node = null!;

    public async Task InitializeAsync() =>
        _node = await SupernodeProcess.StartAsync(
            _temp.Sub("data"),
            $"--Supernode:IdentityWorkBits={WorkBits}",
            $"--Supernode:NewIdentitiesPerAddressPerHour={PerAddress}",
            "--Supernode:SearchShards=1",
            "--Supernode:MaxListingsPerSeller=4");

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        _temp.Dispose();
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task ANewIdentityPaysWithWorkOnceAndIsThenKnown()
    {
        using var channel = LoopbackSource.Channel(_node.GrpcUrl, "127.0.0.2");
        var client = new Protocol.Api.SupernodeClients(channel);
        using var newcomer = PeerIdentity.Generate();

        using (var lazy = await RawSession.OpenAsync(client))
        {
            Assert.Equal((uint)WorkBits, lazy.Challenge.WorkBits);
            await lazy.SendHelloAsync(RawSession.Proof(newcomer, lazy.Challenge), RawSession.Profile(newcomer, "Newcomer", 1));
            var refusal = await lazy.ExpectStatusAsync(StatusCode.FailedPrecondition);
            Assert.Contains($"proof-of-work stamp of {WorkBits} bits", refusal, StringComparison.Ordinal);
        }

        // A stamp without the work for this key is refused the same way.
        using (var cheat = await RawSession.OpenAsync(client))
        {
            await cheat.SendAsync(new SessionClientMessage { Hello = new SessionHello { Proof = RawSession.Proof(newcomer, cheat.Challenge), Work = Google.Protobuf.ByteString.CopyFrom(Weak(newcomer)) } });
            await cheat.ExpectStatusAsync(StatusCode.FailedPrecondition);
        }

        using (var paid = await RawSession.OpenAsync(client))
        {
            await paid.SendAsync(new SessionClientMessage { Hello = new SessionHello { Proof = RawSession.Proof(newcomer, paid.Challenge), Profile = RawSession.Profile(newcomer, "Newcomer", 1), Work = Google.Protobuf.ByteString.CopyFrom(Stamp(newcomer)) } });
            Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await paid.ReadAsync()).KindCase);
        }

        // Known now: no stamp needed any more, and its listings need none either.
        using (var again = await RawSession.OpenAsync(client))
        {
            await again.SendHelloAsync(RawSession.Proof(newcomer, again.Challenge));
            Assert.Equal(SessionServerMessage.KindOneofCase.Welcome, (await again.ReadAsync()).KindCase);
        }

        await client.Listings.PublishListingAsync(ListingFactory.Sign(newcomer, ListingFactory.Listing("Known seller's lamp")));

        // A signer never seen before is told how much work to bring, in a trailer a client can act on.
        using var stranger = PeerIdentity.Generate();
        var unpaid = await Assert.ThrowsAsync<RpcException>(() => client.Listings.PublishListingAsync(ListingFactory.Sign(stranger, ListingFactory.Listing("Stranger's lamp"))).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, unpaid.StatusCode);
        Assert.Equal(WorkBits.ToString(System.Globalization.CultureInfo.InvariantCulture), unpaid.Trailers.GetValue(WorkStamps.WorkBitsTrailer));
        await client.Listings.PublishListingAsync(ListingFactory.Sign(stranger, ListingFactory.Listing("Stranger's lamp")), new Metadata { { WorkStamps.WorkHeader, Convert.ToHexString(Stamp(stranger)) } });
    }

    [Fact]
    public async Task OneAddressBringsOnlySoManyNewIdentitiesAnHourWhileKnownOnesGoOn()
    {
        using var attackerChannel = LoopbackSource.Channel(_node.GrpcUrl, "127.0.0.3");
        using var neighbourChannel = LoopbackSource.Channel(_node.GrpcUrl, "127.0.0.4");
        var attacker = new Protocol.Api.SupernodeClients(attackerChannel);
        var identities = Enumerable.Range(0, PerAddress + 1).Select(_ => PeerIdentity.Generate()).ToList();
        try
        {
            for (var i = 0; i < PerAddress; i++)
            {
                await attacker.Listings.PublishListingAsync(ListingFactory.Sign(identities[i], ListingFactory.Listing($"Fresh key {i}")), Paid(identities[i]));
            }

            var over = await Assert.ThrowsAsync<RpcException>(() => attacker.Listings.PublishListingAsync(ListingFactory.Sign(identities[PerAddress], ListingFactory.Listing("One too many")), Paid(identities[PerAddress])).ResponseAsync);
            Assert.Equal(StatusCode.ResourceExhausted, over.StatusCode);
            Assert.Contains("too many new identities from your address", over.Status.Detail, StringComparison.Ordinal);

            // The address's known identities still write; another address still brings its own.
            await attacker.Listings.PublishListingAsync(ListingFactory.Sign(identities[0], ListingFactory.Listing("Second lamp of a known seller")));
            await new Protocol.Api.SupernodeClients(neighbourChannel).Listings.PublishListingAsync(ListingFactory.Sign(identities[PerAddress], ListingFactory.Listing("Neighbour's lamp")), Paid(identities[PerAddress]));
        }
        finally
        {
            identities.ForEach(i => i.Dispose());
        }
    }

    [Fact]
    public async Task ASellersLiveListingsAreBoundedAndAWithdrawalFreesAPlace()
    {
        using var channel = LoopbackSource.Channel(_node.GrpcUrl, "127.0.0.5");
        var client = new Protocol.Api.SupernodeClients(channel);
        using var seller = PeerIdentity.Generate();
        var published = new List<string>();
        RpcException? refusal = null;
        for (var i = 0; i < 20 && refusal is null; i++)
        {
            var listing = ListingFactory.Listing($"Quota lamp {i}");
            try
            {
                await client.Listings.PublishListingAsync(ListingFactory.Sign(seller, listing), Paid(seller));
                published.Add(listing.ListingId);
            }
            catch (RpcException ex)
            {
                refusal = ex;
            }
        }

        Assert.NotNull(refusal);
        Assert.Equal(StatusCode.ResourceExhausted, refusal.StatusCode);
        Assert.Contains("quota", refusal.Status.Detail, StringComparison.Ordinal);
        // The quota of 4 is enforced per shard with a quarter of slack and a few listings more.
        Assert.InRange(published.Count, 4, 9);

        // An update of a live listing is not a new one; a withdrawal frees a place.
        var update = ListingFactory.Listing("Quota lamp 0, cheaper");
        update.ListingId = published[0];
        await client.Listings.PublishListingAsync(ListingFactory.Sign(seller, update, version: 2));
        await client.Listings.WithdrawListingAsync(ListingFactory.Withdrawal(seller, published[1], 3));
        await client.Listings.PublishListingAsync(ListingFactory.Sign(seller, ListingFactory.Listing("Quota lamp after a withdrawal")));
    }

    [Fact]
    public async Task ADaemonAndTheCliMintTheirStampWhenTheNetworkAsksForOne()
    {
        var seller = new CliRunner(_temp.Sub("cli-seller"));
        Assert.Equal(0, (await seller.RunAsync("init", "--name", "Sam")).ExitCode);
        var published = await seller.RunAsync("listing", "publish", "--title", "Stamped walnut board", "--price", "45", "--currency", "EUR",
            "--category", "home", "--supernode", _node.GrpcUrl, "--json");
        Assert.True(published.ExitCode == 0, published.Stderr);
        Assert.True(File.Exists(Path.Combine(seller.Home, "work.stamp")), "the CLI kept no stamp in its home");

        var runner = new CliRunner(_temp.Sub("daemon"));
        Assert.Equal(0, (await runner.RunAsync("init", "--name", "Robin")).ExitCode);
        await using var daemon = await DaemonProcess.StartAsync(runner, "--supernode", _node.GrpcUrl, "--listen", "127.0.0.1:0");
        var status = await daemon.WaitInSessionAsync();
        Assert.Equal(_node.GrpcUrl, status.GetProperty("supernode").GetString());
        var stamp = Convert.FromHexString((await File.ReadAllTextAsync(Path.Combine(runner.Home, "work.stamp"))).Trim());
        var peerId = (await runner.RunAsync("id")).Stdout.Trim();
        var lookup = await runner.RunAsync("peer", "lookup", peerId, "--json");
        Assert.True(JsonDocument.Parse(lookup.Stdout).RootElement.GetProperty("online").GetBoolean());
        Assert.Equal(WorkStamps.StampBytes, stamp.Length);
    }

    private static Metadata Paid(PeerIdentity identity) => new() { { WorkStamps.WorkHeader, Convert.ToHexString(Stamp(identity)) } };

    private static byte[] Stamp(PeerIdentity identity) => WorkStamps.Mint(identity.PublicKey, WorkBits);

    /// <summary>A stamp that does not carry the work for <paramref name="identity"/> (found, not hoped for).</summary>
    private static byte[] Weak(PeerIdentity identity)
    {
        for (ulong n = 0; ; n++)
        {
            var stamp = BitConverter.GetBytes(n);
            if (WorkStamps.Bits(identity.PublicKey, stamp) < WorkBits)
            {
                return stamp;
            }
        }
    }
}
