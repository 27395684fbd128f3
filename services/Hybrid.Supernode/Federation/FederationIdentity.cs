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
    }

    /// <summary>The key pair; <see cref="PeerIdentity.Id"/> is the cluster id.</summary>
    public PeerIdentity Key { get; }

    /// <summary>The cluster id.</summary>
    public PeerId ClusterId => Key.Id;

    private static PeerIdentity Create(string path)
    {
        var key = PeerIdentity.Generate();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // Readable by the supernode's user only; written whole, then moved in place.
        var temporary = path + ".new";
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

        File.Move(temporary, path, overwrite: false);
        return key;
    }

    public void Dispose() => Key.Dispose();
}
