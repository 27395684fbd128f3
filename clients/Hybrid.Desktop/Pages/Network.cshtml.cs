using Hybrid.Desktop.Services;
using Hybrid.Protocol.Control;

namespace Hybrid.Desktop.Pages;

/// <summary>Supernode in use, failovers, and whether each peer link is direct or relayed.</summary>
public sealed class NetworkModel(DesktopSession session) : DesktopPage(session)
{
    public StatusReply? Status { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken) => await LoadAsync(async () =>
        Status = await Session.Control.StatusAsync(new StatusRequest(), cancellationToken: cancellationToken));
}
