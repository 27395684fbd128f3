using Google.Protobuf;
using Grpc.Core;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Sealing;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Tests.Infrastructure;

namespace Hybrid.Supernode.Tests;

/// <summary>What the relay and the mailboxes refuse, and with which status.</summary>
public sealed class RelayAndMailboxBadInputTests(SupernodeFixture fixture) : IClassFixture<SupernodeFixture>, IDisposable
{
    private readonly PeerIdentity _peer = PeerIdentity.Generate();
    private readonly PeerIdentity _other = PeerIdentity.Generate();

    private Protocol.Api.SupernodeClients Client => fixture.Node.Client;

    public void Dispose()
    {
        _peer.Dispose();
        _other.Dispose();
    }

    private async Task<(RawSession Session, Metadata Token)> SessionAsync(PeerIdentity identity)
    {
        var session = await RawSession.OpenAsync(Client);
        await session.SendHelloAsync(RawSession.Proof(identity, session.Challenge), RawSession.Profile(identity, "Erin", 1));
        var welcome = await session.ReadAsync();
        return (session, new Metadata { { Protocol.Api.SupernodeClients.SessionHeader, welcome.Welcome.SessionToken } });
    }

    private SignedEnvelope RelayRequest(PeerId target)
    {
        var now = DateTimeOffset.UtcNow;
        return SignedEnvelopes.Sign(_peer, EnvelopeKinds.RelayRequest, 1, new RelayRequest { Target = target.ToString() }, now, now.AddMinutes(1));
    }

    private async Task<RpcException> RelayRefusal(RelayFrame first, Metadata? headers = null)
    {
        using var call = Client.Relay.Relay(headers);
        await call.RequestStream.WriteAsync(first);
        return await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext());
    }

    [Fact]
    public async Task MailboxCallsNeedASession()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = _other.Id.ToString(), Item = SealedBoxes.Seal("hi"u8, _other.PublicKey) }).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(() => Client.Mailbox.TakeMailAsync(new TakeMailRequest()).ResponseAsync)).StatusCode);
    }

    [Fact]
    public async Task AnUnsealedItemOrABadRecipientIsInvalidArgument()
    {
        var (session, token) = await SessionAsync(_peer);
        using (session)
        {
            var unsealed = await Assert.ThrowsAsync<RpcException>(() => Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = _other.Id.ToString(), Item = new SealedItem { Ciphertext = ByteString.CopyFromUtf8("plain text") } }, token).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, unsealed.StatusCode);
            Assert.Contains("sealed", unsealed.Status.Detail, StringComparison.Ordinal);

            var badRecipient = await Assert.ThrowsAsync<RpcException>(() => Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = "nobody", Item = SealedBoxes.Seal("hi"u8, _other.PublicKey) }, token).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, badRecipient.StatusCode);
        }
    }

    [Fact]
    public async Task AnItemIsTakenOnlyByItsRecipientAndItsSenderLearnsOfTheDelivery()
    {
        var (senderSession, senderToken) = await SessionAsync(_peer);
        var (recipientSession, recipientToken) = await SessionAsync(_other);
        using (senderSession)
        using (recipientSession)
        {
            var stored = await Client.Mailbox.DepositMailAsync(new DepositMailRequest { Recipient = _other.Id.ToString(), Item = SealedBoxes.Seal("for your eyes"u8, _other.PublicKey) }, senderToken);
            Assert.Empty((await Client.Mailbox.TakeMailAsync(new TakeMailRequest(), senderToken)).Items);

            var item = Assert.Single((await Client.Mailbox.TakeMailAsync(new TakeMailRequest(), recipientToken)).Items);
            Assert.Equal((stored.ItemId, _peer.Id.ToString()), (item.ItemId, item.Sender));
            Assert.Equal("for your eyes"u8.ToArray(), SealedBoxes.Open(item.Item, _other));
            var asked = new MailStatusRequest { Recipient = _other.Id.ToString(), ItemIds = { stored.ItemId } };
            Assert.Equal([stored.ItemId], (await Client.Mailbox.MailStatusAsync(asked, senderToken)).Pending);

            Assert.Equal(1, (await Client.Mailbox.AckMailAsync(new AckMailRequest { ItemIds = { stored.ItemId } }, recipientToken)).Removed);
            Assert.Equal([stored.ItemId], (await Client.Mailbox.MailStatusAsync(asked, senderToken)).Delivered);
            Assert.Empty((await Client.Mailbox.TakeMailAsync(new TakeMailRequest(), recipientToken)).Items);
            // Another peer cannot learn about someone else's deliveries.
            Assert.Empty((await Client.Mailbox.MailStatusAsync(asked, recipientToken)).Delivered);
        }
    }

    [Fact]
    public async Task ARelayFirstFrameThatNeitherOpensNorAcceptsIsInvalidArgument()
    {
        var ex = await RelayRefusal(new RelayFrame { Data = ByteString.CopyFromUtf8("hello") });
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
    }

    [Fact]
    public async Task ARelayToAPeerWithoutASessionHereIsNotFound()
    {
        var (session, token) = await SessionAsync(_peer);
        using (session)
        {
            var ex = await RelayRefusal(new RelayFrame { Open = RelayRequest(_other.Id) }, token);

            Assert.Equal(StatusCode.NotFound, ex.StatusCode);
            Assert.Contains("holds no session on this supernode", ex.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ADialerNeedsASessionOfItsOwnToOpenARelay()
    {
        var (targetSession, _) = await SessionAsync(_other);
        var (bystander, bystanderToken) = await SessionAsync(PeerIdentity.Generate());
        using (targetSession)
        using (bystander)
        {
            var anonymous = await RelayRefusal(new RelayFrame { Open = RelayRequest(_other.Id) });
            Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);

            // Another peer's session does not pay for this dialer's link.
            var borrowed = await RelayRefusal(new RelayFrame { Open = RelayRequest(_other.Id) }, bystanderToken);
            Assert.Equal(StatusCode.PermissionDenied, borrowed.StatusCode);
            Assert.Contains("signed by another peer", borrowed.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AForwardedRelayWithoutATicketFromTheClusterIsPermissionDenied()
    {
        var (targetSession, _) = await SessionAsync(_other);
        using (targetSession)
        {
            var forged = await RelayRefusal(new RelayFrame { Open = RelayRequest(_other.Id) }, new Metadata { { Relay.RelayForwarding.ForwardedHeader, "00112233445566778899aabbccddeeff" } });

            Assert.Equal(StatusCode.PermissionDenied, forged.StatusCode);
            Assert.Contains("no valid ticket", forged.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AForgedRelayRequestIsPermissionDenied()
    {
        var request = RelayRequest(_other.Id);
        request.Signature = ByteString.CopyFrom(new byte[64]);
        var (session, token) = await SessionAsync(_peer);
        using (session)
        {
            Assert.Equal(StatusCode.PermissionDenied, (await RelayRefusal(new RelayFrame { Open = request }, token)).StatusCode);
        }
    }

    [Fact]
    public async Task AcceptingALinkNeedsASessionAndAnOfferThatExists()
    {
        Assert.Equal(StatusCode.Unauthenticated, (await RelayRefusal(new RelayFrame { Accept = "0011" })).StatusCode);
        var (session, token) = await SessionAsync(_other);
        using (session)
        {
            var ex = await RelayRefusal(new RelayFrame { Accept = "0011" }, token);
            Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        }
    }
}
