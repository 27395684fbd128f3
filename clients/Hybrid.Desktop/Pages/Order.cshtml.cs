using Hybrid.Desktop.Services;
using Hybrid.Protocol.Control;
using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>
/// One order: its state and deadline, every signed step on a timeline, and the steps this side may
/// take now (accept or decline, mark paid, fulfil, complete, cancel, dispute; decide, as mediator).
/// </summary>
public sealed class OrderModel(DesktopSession session) : DesktopPage(session)
{
    [BindProperty(SupportsGet = true)] public string Id { get; set; } = string.Empty;

    public OrderView? Order { get; private set; }

    /// <summary>Whether the order names a mediator (so either side may dispute it).</summary>
    public bool Mediated => !string.IsNullOrEmpty(Order?.Mediator);

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(async () =>
        Order = await Session.Control.GetOrderAsync(new OrderRef { OrderId = Id }, cancellationToken: cancellationToken));

    public Task<IActionResult> OnPostAcceptAsync(string? payment, uint? days, CancellationToken ct) =>
        Step(c => c.AcceptOrderAsync(new OrderRef { OrderId = Id, Text = payment ?? string.Empty, AutoCompleteDays = days ?? 0 }, cancellationToken: ct), "Accepted; the buyer was told.");

    public Task<IActionResult> OnPostDeclineAsync(string? reason, CancellationToken ct) =>
        Step(c => c.DeclineOrderAsync(new OrderRef { OrderId = Id, Text = reason ?? string.Empty }, cancellationToken: ct), "Declined; the buyer was told why.");

    public Task<IActionResult> OnPostPayAsync(string? note, CancellationToken ct) =>
        Step(c => c.PayOrderAsync(new OrderRef { OrderId = Id, Text = note ?? string.Empty }, cancellationToken: ct), "Marked paid; the seller was told.");

    public Task<IActionResult> OnPostFulfilAsync(string? carrier, string? tracking, string? note, CancellationToken ct) =>
        Step(c => c.FulfilOrderAsync(new OrderRef { OrderId = Id, Carrier = carrier ?? string.Empty, Tracking = tracking ?? string.Empty, Text = note ?? string.Empty }, cancellationToken: ct), "Marked fulfilled; the buyer was told.");

    public Task<IActionResult> OnPostCompleteAsync(bool unsatisfied, CancellationToken ct) =>
        Step(c => c.CompleteOrderAsync(new OrderRef { OrderId = Id, Unsatisfied = unsatisfied }, cancellationToken: ct), "Completed: you both hold a receipt signed by both.");

    public Task<IActionResult> OnPostCancelAsync(string? reason, CancellationToken ct) =>
        Step(c => c.CancelOrderAsync(new OrderRef { OrderId = Id, Text = reason ?? string.Empty }, cancellationToken: ct), "Cancelled; the other side was told why.");

    public Task<IActionResult> OnPostDisputeAsync(string? reason, CancellationToken ct) =>
        Step(c => c.DisputeOrderAsync(new OrderRef { OrderId = Id, Text = reason ?? string.Empty }, cancellationToken: ct), "Dispute opened; the other side and the mediator have it.");

    public Task<IActionResult> OnPostDecideAsync(string? outcome, uint? share, string? note, CancellationToken ct) =>
        Step(c => c.DecideOrderAsync(new OrderRef { OrderId = Id, Outcome = outcome ?? string.Empty, BuyerSharePercent = share ?? 0, Text = note ?? string.Empty }, cancellationToken: ct), "Verdict signed and sent to both sides.");

    private Task<IActionResult> Step(Func<Control.ControlClient, Grpc.Core.AsyncUnaryCall<OrderView>> call, string notice) => AttemptAsync(
        async () =>
        {
            var order = await call(Session.Control);
            Notice($"{notice} ({order.Delivery})");
            return RedirectToPage("/Order", new { id = Id });
        },
        () => RedirectToPage("/Order", new { id = Id }));
}
