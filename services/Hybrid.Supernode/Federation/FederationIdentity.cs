using System.Security.Cryptography.X509Certificates;
using Hybrid.Protocol.Identity;
using Hybrid.Supernode.Configuration;

namespace Hybrid.Supernode.Federation;

/// <summary>
/// The cluster's federation key: other clusters know this cluster by the id derived from it (like a
/// PeerId), block it by that id, and check its hello answers with it.
/// </summary>
public sealed class FederationIdentity : IDisposable
{
    private const string DefaultFileName = "federation-key.pem";

    public FederationIdentity(SupernodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var path = options.Federation.KeyFile ?? Path.Combine(options.DataDir, DefaultFileName);
        Key = File.Exists(path) ? PeerIdentity.FromPrivateKeyPem(File.ReadAllText(path)) : Create(path);
        _certificate = new(() => Key.CreateCertificate(DateTimeOffset.UtcNow, TimeSpan.FromDays(3650)));
    }

    /// <summary>The key pair; <see cref="PeerIdentity.Id"/> is the cluster id.</summary>
    public PeerIdentity Key { get; }

    /// <summary>The cluster id.</summary>
    public PeerId ClusterId => Key.Id;

    /// <summary>
    /// A self-signed certificate over the cluster key, for the federation listener and as client
    /// certificate when pulling: other clusters pin the id its key hashes to, not its chain.
    /// </summary>
    public X509Certificate2 Certificate => _certificate.Value;

    private readonly Lazy<X509Certificate2> _certificate;

    private static PeerIdentity Create(string path)
    {
        var key = PeerIdentity.Generate();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // Readable by the supernode's user only; written whole, then moved in place. Supernodes
        // sharing one key file may start together: the first to move its key in wins, the others read it.
        var temporary = $"{path}.{Guid.NewGuid():N}.new";
        var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(temporary, fileOptions))
        using (var writer = new StreamWriter(file))
        {
            writer.Write(key.ExportPrivateKeyPem());
        }

        try
        {
            File.Move(temporary, path, overwrite: false);
            return key;
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
            key.Dispose();
            return PeerIdentity.FromPrivateKeyPem(File.ReadAllText(path));
        }
    }

    public void Dispose()
    {
        if (_certificate.IsValueCreated)
        {
            _certificate.Value.Dispose();
        }

        Key.Dispose();
    }
}
