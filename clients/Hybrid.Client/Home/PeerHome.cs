using System.Text.Json;
using Hybrid.Protocol.Identity;

namespace Hybrid.Client.Home;

/// <summary>What a user's home directory remembers between commands.</summary>
public sealed class PeerSettings
{
    /// <summary>The name shown to other peers.</summary>
    public string DisplayName { get; set; } = "anonymous";

    /// <summary>Supernode URLs to start from (saved by <c>peer run</c> and <c>--supernode</c>).</summary>
    public List<string> Supernodes { get; set; } = [];

    /// <summary>Where the peer host listens (HOST:PORT), when set by <c>peer run --listen</c>.</summary>
    public string? Listen { get; set; }

    /// <summary>HOST:PORT to advertise instead of the listening address (a forwarded port), when set by <c>peer run --advertise</c>.</summary>
    public string? Advertise { get; set; }

    /// <summary>Privacy mode: never reveal this peer's address to counterparties.</summary>
    public bool Private { get; set; }

    /// <summary>What other peers may make this peer do and store (null: the defaults).</summary>
    public Connectivity.PeerBudgetOptions? Budgets { get; set; }
}

/// <summary>
/// One user's home directory: the key pair (PKCS#8 PEM, readable by the owner only) and settings.
/// Chosen by <c>--home</c>, else <c>HYBRID_HOME</c>, else a folder under the user's data directory.
/// </summary>
public sealed class PeerHome
{
    private const string IdentityFile = "identity.pem";
    private const string SettingsFile = "settings.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Opens (without creating anything) the home at <paramref name="path"/>.</summary>
    public PeerHome(string path) => Path = System.IO.Path.GetFullPath(path);

    /// <summary>The directory.</summary>
    public string Path { get; }

    /// <summary>Whether an identity exists here.</summary>
    public bool HasIdentity => File.Exists(System.IO.Path.Combine(Path, IdentityFile));

    /// <summary>The home the environment points at.</summary>
    public static PeerHome Resolve(string? explicitPath)
    {
        var path = explicitPath
            ?? Environment.GetEnvironmentVariable("HYBRID_HOME")
            ?? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "hybrid");
        return new PeerHome(path);
    }

    /// <summary>Creates a new identity; refuses to replace an existing one.</summary>
    /// <exception cref="InvalidOperationException">An identity already exists here.</exception>
    public PeerIdentity CreateIdentity()
    {
        if (HasIdentity)
        {
            throw new InvalidOperationException($"{Path} already holds an identity; use another --home to create a new one");
        }

        Directory.CreateDirectory(Path);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var identity = PeerIdentity.Generate();
        var file = System.IO.Path.Combine(Path, IdentityFile);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var writer = new StreamWriter(file, System.Text.Encoding.ASCII, options))
        {
            writer.Write(identity.ExportPrivateKeyPem());
        }

        return identity;
    }

    /// <summary>Loads the identity.</summary>
    /// <exception cref="FileNotFoundException">No identity here yet.</exception>
    public PeerIdentity LoadIdentity()
    {
        var file = System.IO.Path.Combine(Path, IdentityFile);
        if (!File.Exists(file))
        {
            throw new FileNotFoundException($"no identity in {Path}: run 'hybrid init' first", file);
        }

        return PeerIdentity.FromPrivateKeyPem(File.ReadAllText(file));
    }

    /// <summary>The saved settings (defaults when none).</summary>
    public PeerSettings LoadSettings()
    {
        var file = System.IO.Path.Combine(Path, SettingsFile);
        return File.Exists(file) ? JsonSerializer.Deserialize<PeerSettings>(File.ReadAllText(file), Json) ?? new PeerSettings() : new PeerSettings();
    }

    /// <summary>Saves the settings (atomically: written aside, then moved in place).</summary>
    public void SaveSettings(PeerSettings settings)
    {
        Directory.CreateDirectory(Path);
        var file = System.IO.Path.Combine(Path, SettingsFile);
        var temp = file + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(settings, Json));
        File.Move(temp, file, overwrite: true);
    }
}
