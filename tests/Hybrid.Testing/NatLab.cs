using System.Diagnostics;
using System.Globalization;

namespace Hybrid.Testing;

/// <summary>How a home router translates.</summary>
public enum NatKind
{
    /// <summary>MASQUERADE: one mapping per inside address and port, whatever the destination (port kept when free); unsolicited packets dropped.</summary>
    EndpointIndependent,

    /// <summary>MASQUERADE --random-fully: a new random port for every destination (address-and-port dependent); unsolicited packets dropped.</summary>
    Symmetric,
}

/// <summary>A machine in the lab: its network namespace and its address.</summary>
/// <param name="Namespace">Run its processes with <c>ip netns exec</c> this.</param>
/// <param name="Address">Its own address (a home's is behind its router).</param>
/// <param name="PublicAddress">The address the "internet" sees it as: its own, or its router's.</param>
/// <param name="Nat">Its router's kind, or null for a public host.</param>
public sealed record LabHost(string Namespace, string Address, string PublicAddress, NatKind? Nat);

/// <summary>
/// A NAT lab in Linux network namespaces (root only): an "internet" namespace with a bridge, public
/// hosts on 203.0.113.0/24, and homes, each a router namespace (MASQUERADE, unsolicited inbound
/// dropped as home routers do) in front of a home namespace on a small subnet of 198.51.100.0/24.
/// Documentation ranges only; the lab has no route to any real network, and every namespace is
/// deleted on dispose (and labs left behind by a dead test process are deleted on the next create).
/// </summary>
public sealed class NatLab : IAsyncDisposable
{
    private const string Prefix = "hyb";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(20);
    private static int _labs;
    private readonly List<string> _namespaces = [];
    private readonly string _id;
    private int _publicHosts;
    private int _homes;

    private NatLab(string id) => _id = id;

    private string Internet => $"{Prefix}{_id}-inet";

    /// <summary>
    /// Creates the internet namespace, or fails saying why (not root, no <c>ip</c> or <c>iptables</c>,
    /// namespaces not allowed): the lab never skips silently.
    /// </summary>
    public static async Task<NatLab> CreateAsync()
    {
        if (Environment.UserName != "root" && Environment.GetEnvironmentVariable("USER") != "root" && !IsRoot())
        {
            throw new InvalidOperationException("the NAT lab needs root (network namespaces, veth pairs and iptables); run the tests as root, as CI does");
        }

        foreach (var tool in (string[])["ip", "iptables"])
        {
            if (!new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Any(d => File.Exists(Path.Combine(d, tool))))
            {
                throw new InvalidOperationException($"the NAT lab needs '{tool}' (scripts/install-deps.sh installs it)");
            }
        }

        await RemoveAbandonedAsync();
        // Short ids: interface names are at most 15 characters.
        var id = $"{Environment.ProcessId:x}{Interlocked.Increment(ref _labs) % 16:x}";
        var lab = new NatLab(id);
        try
        {
            await lab.AddNamespaceAsync(lab.Internet);
            await Ip("-n", lab.Internet, "link", "add", "br0", "type", "bridge");
            await Ip("-n", lab.Internet, "link", "set", "br0", "up");
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    /// <summary>A host with a public address (a supernode, a peer with an open port).</summary>
    public async Task<LabHost> AddPublicAsync()
    {
        var n = ++_publicHosts;
        var name = $"{Prefix}{_id}-p{n}";
        var address = $"203.0.113.{10 + n}";
        await AddNamespaceAsync(name);
        await WireToInternetAsync(name, $"{Prefix}{_id}p{n}", address);
        return new LabHost(name, address, address, null);
    }

    /// <summary>A home: a router translating with <paramref name="nat"/> in front of one machine.</summary>
    public async Task<LabHost> AddHomeAsync(NatKind nat)
    {
        var n = ++_homes;
        var router = $"{Prefix}{_id}-r{n}";
        var home = $"{Prefix}{_id}-h{n}";
        var wanAddress = $"203.0.113.{100 + n}";
        var lanRouter = $"198.51.100.{(8 * n) + 1}";
        var lanHome = $"198.51.100.{(8 * n) + 2}";
        await AddNamespaceAsync(router);
        await AddNamespaceAsync(home);
        var wan = await WireToInternetAsync(router, $"{Prefix}{_id}w{n}", wanAddress);

        var (lanA, lanB) = ($"{Prefix}{_id}l{n}a", $"{Prefix}{_id}l{n}b");
        await Ip("link", "add", lanA, "type", "veth", "peer", "name", lanB);
        await Ip("link", "set", lanA, "netns", router);
        await Ip("link", "set", lanB, "netns", home);
        await Ip("-n", router, "addr", "add", $"{lanRouter}/29", "dev", lanA);
        await Ip("-n", router, "link", "set", lanA, "up");
        await Ip("-n", home, "addr", "add", $"{lanHome}/29", "dev", lanB);
        await Ip("-n", home, "link", "set", lanB, "up");
        await Ip("-n", home, "route", "add", "default", "via", lanRouter);

        await Exec(router, "sysctl", "-qw", "net.ipv4.ip_forward=1");
        string[] masquerade = ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", wan, "-j", "MASQUERADE"];
        await Exec(router, nat == NatKind.Symmetric ? [.. masquerade, "--random-fully"] : masquerade);
        // Home routers drop what nobody inside asked for (no RST that would abort a punch).
        await Exec(router, "iptables", "-A", "INPUT", "-i", wan, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP");
        await Exec(router, "iptables", "-A", "FORWARD", "-i", wan, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP");
        return new LabHost(home, lanHome, wanAddress, nat);
    }

    /// <summary>Runs a command inside <paramref name="host"/>'s namespace and returns its output (fails on a non-zero exit).</summary>
    public static Task<string> RunInAsync(LabHost host, params string[] command)
    {
        ArgumentNullException.ThrowIfNull(host);
        return Exec(host.Namespace, command);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var name in Enumerable.Reverse(_namespaces))
        {
            await TryIp("netns", "del", name);
        }

        _namespaces.Clear();
    }

    private static bool IsRoot()
    {
        try
        {
            return File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal)).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0";
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Deletes lab namespaces whose test process is gone (a killed run leaves them behind).</summary>
    private static async Task RemoveAbandonedAsync()
    {
        var listed = await Ip("netns", "list");
        foreach (var line in listed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Take(500))
        {
            var name = line.Split(' ')[0];
            if (!name.StartsWith(Prefix, StringComparison.Ordinal) || name.IndexOf('-', StringComparison.Ordinal) is var dash && dash < Prefix.Length + 2)
            {
                continue;
            }

            if (int.TryParse(name[Prefix.Length..(dash - 1)], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var pid)
                && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                await TryIp("netns", "del", name);
            }
        }
    }

    private async Task AddNamespaceAsync(string name)
    {
        await Ip("netns", "add", name);
        _namespaces.Add(name);
        await Ip("-n", name, "link", "set", "lo", "up");
    }

    /// <summary>A veth from <paramref name="ns"/> into the internet bridge; returns the inside interface's name.</summary>
    private async Task<string> WireToInternetAsync(string ns, string stem, string address)
    {
        var (inside, outside) = (stem + "a", stem + "b");
        await Ip("link", "add", inside, "type", "veth", "peer", "name", outside);
        await Ip("link", "set", inside, "netns", ns);
        await Ip("link", "set", outside, "netns", Internet);
        await Ip("-n", ns, "addr", "add", $"{address}/24", "dev", inside);
        await Ip("-n", ns, "link", "set", inside, "up");
        await Ip("-n", Internet, "link", "set", outside, "master", "br0", "up");
        return inside;
    }

    private static Task<string> Exec(string ns, params string[] command) => Ip(["netns", "exec", ns, .. command]);

    private static Task<string> Ip(params string[] args) => RunAsync("ip", args);

    private static async Task TryIp(params string[] args)
    {
        try
        {
            await RunAsync("ip", args);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static async Task<string> RunAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} did not finish within {CommandTimeout.TotalSeconds:0} s");
        }

        return process.ExitCode == 0
            ? await stdout
            : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed (exit {process.ExitCode}): {(await stderr).Trim()}");
    }
}
