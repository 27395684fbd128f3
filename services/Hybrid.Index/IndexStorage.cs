namespace Hybrid.Index;

/// <summary>Names shared by the grains and the host that configures their storage.</summary>
public static class IndexStorage
{
    /// <summary>The grain storage provider every index grain persists to (SQLite embedded, Redis in a cluster).</summary>
    public const string ProviderName = "hybrid";
}
