using Hybrid.Desktop.Services;

using Microsoft.AspNetCore.Mvc;

namespace Hybrid.Desktop.Pages;

/// <summary>The user's PeerId, with a copy button.</summary>
public sealed class IdentityModel(DesktopSession session) : DesktopPage(session)
{
    public string PeerId => Session.Identity.Id.ToString();

    public string Name => Session.DisplayName;

    public string Home => Session.HomePath;

    public IActionResult OnGet() => Page();
}
