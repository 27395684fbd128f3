namespace Hybrid.Protocol.Api;

/// <summary>Supernode URLs in one canonical form, so the URL a peer dialed can be compared with a supernode's own.</summary>
public static class SupernodeUrls
{
    /// <summary>
    /// <c>scheme://host:port</c>, scheme and host in lower case, the port always written; null when
    /// <paramref name="url"/> is not an absolute http or https URL.
    /// </summary>
    public static string? Canonical(string? url)
    {
        if (string.IsNullOrWhiteSpace(url) || url.Length > 512 || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            return null;
        }

        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{uri.Scheme}://{uri.IdnHost.ToLowerInvariant()}:{uri.Port}");
    }
}
