using Hybrid.Index.Mailbox;
using Orleans.Core.Internal;

namespace Hybrid.Index.Tests;

/// <summary>A mailbox keeps each item as its own durable record: deposits and acknowledgements outlive the grain, and cost what they change.</summary>
public sealed class MailboxGrainTests(GrainHost host) : IClassFixture<GrainHost>
{
    [Fact]
    public async Task DepositsAndDeliveriesOutliveTheGrainAndAFailedWriteAcknowledgesNothing()
    {
        var mailbox = host.Grains.GetGrain<IMailboxGrain>("recipient-1");
        var first = await mailbox.Deposit(Deposit("sender-a", 100));
        Assert.True(first.Stored);

        FaultyStores.FailNextWrites("mailbox/recipient-1");
        await Assert.ThrowsAnyAsync<Exception>(() => mailbox.Deposit(Deposit("sender-a", 100)));

        await Deactivate(mailbox);
        var waiting = await mailbox.Peek(10, 1 << 20);
        Assert.Equal(first.ItemId, Assert.Single(waiting).ItemId);

        Assert.Equal(1, await mailbox.Acknowledge([first.ItemId]));
        await Deactivate(mailbox);
        Assert.Empty(await mailbox.Peek(10, 1 << 20));
        var status = await mailbox.Status("sender-a", [first.ItemId]);
        Assert.Equal(first.ItemId, Assert.Single(status.Delivered));
    }

    [Fact]
    public async Task ADepositIntoAFullMailboxWritesOnlyItsOwnItem()
    {
        var mailbox = host.Grains.GetGrain<IMailboxGrain>("recipient-2");
        for (var i = 0; i < 200; i++)
        {
            Assert.True((await mailbox.Deposit(Deposit($"sender-{i % 20}", 4096))).Stored);
        }

        var before = FaultyStores.Items.BytesWritten;
        Assert.True((await mailbox.Deposit(Deposit("sender-x", 4096))).Stored);
        var written = FaultyStores.Items.BytesWritten - before;

        // One item of 4 KiB and its few bytes of framing: not the 800 KiB the mailbox holds.
        Assert.InRange(written, 4096, 4096 + 256);
    }

    [Fact]
    public async Task AMailboxWhoseOwnerWasClaimedElsewhereAcknowledgesNoDepositAndTheNewActivationHoldsEveryAcknowledgedOne()
    {
        // As with search shards: the mailbox activated on another supernode while this activation's
        // supernode was frozen and declared dead; a deposit this one still had in flight must not be
        // acknowledged, for the mailbox now answering for the recipient read the store before it.
        var mailbox = host.Grains.GetGrain<IMailboxGrain>("recipient-3");
        var first = await mailbox.Deposit(Deposit("sender-a", 100));
        Assert.True(first.Stored);

        await FaultyStores.Items.ForCluster(host.Cluster.Options.ClusterId).ClaimAsync("mailbox/recipient-3");
        var refused = await Assert.ThrowsAsync<Orleans.Storage.InconsistentStateException>(() => mailbox.Deposit(Deposit("sender-b", 100)));
        Assert.Contains("moved to another supernode", refused.Message, StringComparison.Ordinal);

        // The stale activation has gone: the sender's retry reaches a fresh one, which holds both.
        var retried = await mailbox.Deposit(Deposit("sender-b", 100));
        Assert.True(retried.Stored);
        Assert.Equal(new[] { first.ItemId, retried.ItemId }.Order(), (await mailbox.Peek(10, 1 << 20)).Select(i => i.ItemId).Order());
    }

    private static MailDeposit Deposit(string sender, int size) =>
        new(sender, new byte[size], TimeSpan.FromDays(1), 10_000, 64L << 20, 1_000, 16L << 20);

    /// <summary>Ends the activation; the next call lands on a new one, which loads what was stored.</summary>
    private static async Task Deactivate(IMailboxGrain mailbox) => await mailbox.Cast<IGrainManagementExtension>().DeactivateOnIdle();
}
