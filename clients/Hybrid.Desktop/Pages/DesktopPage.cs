using Hybrid.Desktop.Services;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Hybrid.Desktop.Pages;

/// <summary>What every page shares: the session, and failures shown as one readable sentence.</summary>
public abstract class DesktopPage(DesktopSession session) : PageModel
{
    /// <summary>The session.</summary>
    protected DesktopSession Session { get; } = session;

    /// <summary>Shown at the top of the next page.</summary>
    protected void Notice(string message) => TempData["Notice"] = message;

    /// <summary>Runs an action; a failure becomes the page's error message instead of a crash.</summary>
    protected async Task<IActionResult> AttemptAsync(Func<Task<IActionResult>> action, Func<IActionResult> onFailure)
    {
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(onFailure);
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            TempData["Error"] = Friendly.Message(ex);
            return onFailure();
        }
    }

    /// <summary>Loads what a page shows; a failure is shown on the page itself.</summary>
    protected async Task LoadAsync(Func<Task> load)
    {
        ArgumentNullException.ThrowIfNull(load);
        try
        {
            await load();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ViewData["LoadError"] = Friendly.Message(ex);
        }
    }

    /// <summary>A short form of a PeerId for tables.</summary>
    public static string Abbreviate(string peerId) => peerId.Length > 15 ? peerId[..15] + "…" : peerId;
}
