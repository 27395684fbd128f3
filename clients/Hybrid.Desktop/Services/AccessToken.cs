using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Hybrid.Desktop.Services;

/// <summary>
/// The app answers only the browser that opened the link it printed: the link carries a random
/// token, exchanged at once for a same-site, HTTP-only cookie. Anything else — another local
/// program, a web page trying its luck, a rebinding DNS name — gets 403.
/// </summary>
public sealed class AccessToken
{
    /// <summary>The cookie that carries the token after the first visit.</summary>
    public const string CookieName = "hybrid_desktop";

    /// <summary>A new random token.</summary>
    public string Value { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The middleware.</summary>
    public RequestDelegate Guard(RequestDelegate next) => async context =>
    {
        var host = context.Request.Host.Host;
        if (host is not ("127.0.0.1" or "localhost"))
        {
            await Refuse(context, "This app answers on 127.0.0.1 only.");
            return;
        }

        if (context.Request.Query.TryGetValue("token", out var given))
        {
            if (!Matches(given.ToString()))
            {
                await Refuse(context, "This link's access token is wrong. Use the link 'hybrid desktop' printed.");
                return;
            }

            context.Response.Cookies.Append(CookieName, Value, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", IsEssential = true });
            context.Response.Redirect(context.Request.Path.HasValue && context.Request.Path != "/" ? context.Request.Path : "/");
            return;
        }

        if (!context.Request.Cookies.TryGetValue(CookieName, out var cookie) || !Matches(cookie))
        {
            await Refuse(context, "This app needs the link 'hybrid desktop' printed (it carries an access token).");
            return;
        }

        await next(context);
    };

    private bool Matches(string? candidate) =>
        candidate is not null && CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(candidate), System.Text.Encoding.UTF8.GetBytes(Value));

    private static async Task Refuse(HttpContext context, string message)
    {
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(message);
    }
}
