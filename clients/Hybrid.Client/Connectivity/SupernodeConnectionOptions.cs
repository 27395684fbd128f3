namespace Hybrid.Client.Connectivity;

/// <summary>Settings of a <see cref="SupernodeConnection"/>.</summary>
public sealed class SupernodeConnectionOptions
{
    /// <summary>Supernode URLs to start from; the connection learns the rest of the cluster from them.</summary>
    public required IReadOnlyList<string> Seeds { get; init; }

    /// <summary>The name shown to other peers.</summary>
    public required string DisplayName { get; init; }

    /// <summary>Free text shown with the profile.</summary>
    public string About { get; init; } = string.Empty;

    /// <summary>https:// URLs where this peer's host can be reached directly.</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = [];

    /// <summary>How long one attempt to reach and authenticate with a supernode may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>First wait after every known supernode failed; it doubles (with jitter) up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How often the live supernode list is fetched again while in session (supernodes join and leave).</summary>
    public TimeSpan SupernodeListRefresh { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait between rounds of attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where the identity's proof-of-work stamp is kept once minted (a network asks it of new
    /// identities), so it is made once per identity rather than once per run. Null: memory only.
    /// </summary>
    public string? WorkStampFile { get; init; }

    /// <summary>
    /// Decides whether an https supernode's certificate is trusted (null: the system's CAs, with the
    /// host name checked). Whatever is trusted, the session proof names its key.
    /// </summary>
    public Func<System.Security.Cryptography.X509Certificates.X509Certificate2, System.Net.Security.SslPolicyErrors, bool>? ServerCertificateValidation { get; init; }

    /// <summary>
    /// An HTTP handler shared with other connections, so many peers' sessions ride few HTTP/2
    /// connections (a gateway, or a load runner multiplexing peers); the handler's owner disposes
    /// it. Null: this connection dials its own, from the peer host's port when it can, with the
    /// TLS checks above. A shared handler does its own TLS checks, and the session proof then names
    /// no TLS key.
    /// </summary>
    public System.Net.Http.HttpMessageHandler? SharedHandler { get; init; }
}

/// <summary>What happened to the connection.</summary>
/// <param name="SupernodeUrl">The supernode now serving the session (or the one just lost).</param>
/// <param name="PreviousUrl">On failover: the supernode that was lost.</param>
/// <param name="Reason">Why the session ended, for disconnects.</param>
public sealed record SupernodeConnectionEvent(string SupernodeUrl, string? PreviousUrl, string? Reason);
