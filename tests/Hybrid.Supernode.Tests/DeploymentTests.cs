using System.Diagnostics;
using k8s;
using k8s.Models;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// The container, compose and Helm files, checked offline with the real tools (docker-compose,
/// helm; installed by scripts/install-deps.sh) and the Kubernetes client's strict manifest loader.
/// </summary>
public sealed class DeploymentTests
{
    private static readonly string Root = BuildOutput.RepositoryRoot;
    private static readonly string Chart = Path.Combine(Root, "charts", "hybrid-supernode");
    private static readonly string ExternalRedisValues = Path.Combine(Chart, "ci", "external-redis-values.yaml");

    [Fact]
    public async Task TheComposeFileIsValidAndRunsThreeSupernodesOnAPasswordProtectedRedis()
    {
        var result = await RunAsync(Tool("docker-compose"), ["-f", Path.Combine(Root, "docker-compose.yml"), "config"], new() { ["REDIS_PASSWORD"] = "test-password" });

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("--requirepass", result.Output, StringComparison.Ordinal);
        Assert.Contains("--appendfsync", result.Output, StringComparison.Ordinal);
        for (var i = 1; i <= 3; i++)
        {
            Assert.Contains($"supernode{i}:", result.Output, StringComparison.Ordinal);
        }

        Assert.Equal(3, CountOf(result.Output, "redis:6379,password=test-password"));
        // A second cluster, federated with the first over the federation listeners (mutual TLS).
        Assert.Contains("market-b:", result.Output, StringComparison.Ordinal);
        Assert.Contains("https://market-b:5003", result.Output, StringComparison.Ordinal);
        Assert.Contains("https://supernode1:5003", result.Output, StringComparison.Ordinal);
        Assert.Equal(4, CountOf(result.Output, "Supernode__Federation__Listen: 0.0.0.0:5003"));
        Assert.Contains("prometheus", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void TheImageBuildsInStagesRunsAsAnUnprivilegedUserAndChecksItsHealth()
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "services", "Hybrid.Supernode", "Dockerfile")).Select(l => l.Trim()).ToList();

        Assert.True(lines.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)) >= 2, "expected a multi-stage build");
        var user = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.DoesNotContain("root", user, StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("/healthz", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheChartLintsStrictly(bool externalRedis)
    {
        var result = await HelmAsync(["lint", "--strict", Chart, .. ValuesArgs(externalRedis)]);
        Assert.True(result.ExitCode == 0, result.Output);
    }

    [Fact]
    public async Task DefaultValuesRenderValidManifestsWithProbesDownwardApiAndABundledRedis()
    {
        var objects = await RenderAsync(externalRedis: false);

        var deployment = Assert.Single(objects.OfType<V1Deployment>());
        Assert.Equal(3, deployment.Spec.Replicas);
        Assert.Equal("0", deployment.Spec.Strategy.RollingUpdate.MaxUnavailable.Value);
        var pod = deployment.Spec.Template;
        Assert.Equal("hybrid", pod.Metadata.Labels["orleans/clusterId"]);
        Assert.True(pod.Metadata.Labels.ContainsKey("orleans/serviceId"));
        Assert.True(pod.Spec.TerminationGracePeriodSeconds >= 30);
        var container = Assert.Single(pod.Spec.Containers);
        Assert.Equal("/readyz", container.ReadinessProbe.HttpGet.Path);
        Assert.Equal("/healthz", container.LivenessProbe.HttpGet.Path);
        var env = container.Env.ToDictionary(e => e.Name);
        Assert.Equal("status.podIP", env["POD_IP"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("metadata.name", env["POD_NAME"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("metadata.namespace", env["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath);
        Assert.NotNull(env["Supernode__Redis"].ValueFrom.SecretKeyRef);
        // Clients inside the cluster dial the Service: a session proof naming it is this supernode's.
        Assert.Contains("http://t-hybrid-supernode:5000", env["Supernode__PublicUrls"].Value.Split(','));
        Assert.True(pod.Spec.SecurityContext.RunAsNonRoot);

        // The public Service exposes the gRPC API only: silo and gateway ports stay inside.
        var services = objects.OfType<V1Service>().ToList();
        var ports = services.SelectMany(s => s.Spec.Ports).Select(p => p.TargetPort.Value).ToList();
        Assert.Contains("grpc", ports);
        Assert.DoesNotContain("silo", ports);
        Assert.DoesNotContain("gateway", ports);

        // Orleans trusts whoever reaches a silo: silo and gateway admit supernode pods only, as does the bundled Redis.
        var policies = objects.OfType<V1NetworkPolicy>().ToList();
        var supernodes = policies.Single(p => p.Spec.PodSelector.MatchLabels.SequenceEqual(deployment.Spec.Selector.MatchLabels));
        var siloRule = supernodes.Spec.Ingress.Single(r => r.Ports.Any(p => p.Port.Value == "11111"));
        Assert.Contains(siloRule.Ports, p => p.Port.Value == "30000");
        Assert.Equal(deployment.Spec.Selector.MatchLabels, Assert.Single(siloRule.FromProperty).PodSelector.MatchLabels);
        Assert.Contains(supernodes.Spec.Ingress, r => r.Ports.Any(p => p.Port.Value == "5000") && r.FromProperty is null);
        var redisPolicy = policies.Single(p => p.Spec.PodSelector.MatchLabels.TryGetValue("app.kubernetes.io/component", out var c) && c == "redis");
        Assert.Equal(deployment.Spec.Selector.MatchLabels, Assert.Single(Assert.Single(redisPolicy.Spec.Ingress).FromProperty).PodSelector.MatchLabels);

        var budget = Assert.Single(objects.OfType<V1PodDisruptionBudget>());
        Assert.Equal(deployment.Spec.Selector.MatchLabels, budget.Spec.Selector.MatchLabels);
        var redis = Assert.Single(objects.OfType<V1StatefulSet>());
        Assert.Single(redis.Spec.VolumeClaimTemplates);
        var args = redis.Spec.Template.Spec.Containers[0].Args;
        Assert.Contains("--requirepass", args);
        // Durability as the README states it: the append-only file, fsync every second.
        Assert.Equal("yes", args[args.IndexOf("--appendonly") + 1]);
        Assert.Equal("everysec", args[args.IndexOf("--appendfsync") + 1]);
        var secret = Assert.Single(objects.OfType<V1Secret>());
        Assert.True(secret.Data["password"].Length >= 32, "the generated Redis password is too short");
    }

    [Fact]
    public async Task ExternalRedisValuesRenderTlsAdmissionAutoscalingAndAServiceMonitor()
    {
        var objects = await RenderAsync(externalRedis: true);

        Assert.Empty(objects.OfType<V1StatefulSet>());
        var deployment = Assert.Single(objects.OfType<V1Deployment>());
        Assert.Null(deployment.Spec.Replicas);
        var env = deployment.Spec.Template.Spec.Containers[0].Env.ToDictionary(e => e.Name);
        Assert.Equal("hybrid-redis", env["Supernode__Redis"].ValueFrom.SecretKeyRef.Name);
        Assert.Equal("/tls/silo/ca.crt", env["Supernode__SiloCa"].Value);
        Assert.StartsWith("https://", env["Kestrel__Endpoints__Grpc__Url"].Value, StringComparison.Ordinal);
        Assert.Contains(deployment.Spec.Template.Spec.Volumes, v => v.Secret?.SecretName == "hybrid-silo-tls");
        Assert.Equal("https://market.example.net,https://other.example.com", env["Supernode__Federation__Peers"].Value);
        Assert.Equal("/federation/federation-key.pem", env["Supernode__Federation__KeyFile"].Value);
        Assert.Contains(deployment.Spec.Template.Spec.Volumes, v => v.Secret?.SecretName == "hybrid-federation-key");
        var autoscaler = Assert.Single(objects.OfType<V2HorizontalPodAutoscaler>());
        Assert.Equal((5, 20), (autoscaler.Spec.MinReplicas, autoscaler.Spec.MaxReplicas));
        Assert.Single(objects.OfType<ServiceMonitorManifest>());
    }

    [Theory]
    [InlineData("replicaCount=notanumber", "replicaCount")]
    [InlineData("replicaCount=0", "replicaCount")]
    [InlineData("supernode.searchShard=4", "searchShard")]
    [InlineData("redis.bundled=false", "existingSecret")]
    [InlineData("siloTls.enabled=true", "secretName")]
    [InlineData("federation.peers={https://a.example.org}", "keySecretName")]
    [InlineData("federation.peers={ftp://a.example.org}", "peers")]
    public async Task BadValuesAreRefusedWithTheirName(string setting, string named)
    {
        var result = await HelmAsync(["template", "t", Chart, "--set", setting]);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(named, result.Output, StringComparison.Ordinal);
    }

    private static string[] ValuesArgs(bool externalRedis) => externalRedis ? ["-f", ExternalRedisValues] : [];

    /// <summary>Renders the chart and loads every manifest strictly: a misspelled field fails the load.</summary>
    private static async Task<List<object>> RenderAsync(bool externalRedis)
    {
        var result = await HelmAsync(["template", "t", Chart, .. ValuesArgs(externalRedis)]);
        Assert.True(result.ExitCode == 0, result.Output);
        var objects = new List<object>();
        foreach (var document in result.Output.Split("\n---", StringSplitOptions.RemoveEmptyEntries))
        {
            if (string.IsNullOrWhiteSpace(document.Replace("---", string.Empty, StringComparison.Ordinal)) || !document.Contains("kind:", StringComparison.Ordinal))
            {
                continue;
            }

            if (document.Contains("kind: ServiceMonitor", StringComparison.Ordinal))
            {
                // Not a core kind: check the fields Prometheus Operator needs by hand.
                Assert.Contains("monitoring.coreos.com/v1", document, StringComparison.Ordinal);
                Assert.Contains("port: ops", document, StringComparison.Ordinal);
                Assert.Contains("path: /metrics", document, StringComparison.Ordinal);
                objects.Add(new ServiceMonitorManifest(document));
                continue;
            }

            var loaded = KubernetesYaml.LoadAllFromString(document, strict: true);
            foreach (var item in loaded)
            {
                Assert.False(string.IsNullOrEmpty(((IMetadata<V1ObjectMeta>)item).Metadata?.Name), $"a rendered {item.GetType().Name} has no name");
                objects.Add(item);
            }
        }

        return objects;
    }

    [Fact]
    public async Task TheCliPacksAsADotnetToolThatGivesTheHybridCommand()
    {
        using var temp = new TempDir();
        var pack = await RunAsync("dotnet", ["pack", Path.Combine(Root, "clients", "Hybrid.Cli"), "-c", "Release", "-o", temp.Sub("pkg"), "-nologo"], []);
        Assert.True(pack.ExitCode == 0, pack.Output);
        var install = await RunAsync("dotnet", ["tool", "install", "--tool-path", temp.Sub("bin"), "--add-source", temp.Sub("pkg"), "hybrid"], []);
        Assert.True(install.ExitCode == 0, install.Output);

        var init = await RunAsync(Path.Combine(temp.Sub("bin"), "hybrid"), ["init", "--name", "Tess", "--home", temp.Sub("home")], []);

        Assert.True(init.ExitCode == 0, init.Output);
        Assert.True(Hybrid.Protocol.Identity.PeerId.TryParse(init.Output.Trim(), out _, out var error), $"'hybrid init' printed no PeerId ({error}): {init.Output}");
    }

    [Fact]
    public async Task TheCliPublishesAsOneSelfContainedFileForPeopleWithoutTheSdk()
    {
        using var temp = new TempDir();
        // The README's command, into a folder of its own.
        var publish = await RunAsync("dotnet", ["publish", Path.Combine(Root, "clients", "Hybrid.Cli"), "-c", "Release", "-r", "linux-x64", "--self-contained",
            "-p:PublishSingleFile=true", "-p:IncludeNativeLibrariesForSelfExtract=true", "-p:DebugType=none", "-p:PublishDocumentationFile=false", "-p:PublishReferencesDocumentationFiles=false", "-o", temp.Sub("out"), "-nologo"], []);
        Assert.True(publish.ExitCode == 0, publish.Output);
        Assert.Equal("hybrid", Path.GetFileName(Assert.Single(Directory.GetFiles(temp.Sub("out")))));

        // It runs with no .NET on the path and no DOTNET_ROOT: the runtime is inside.
        var init = await RunAsync(Path.Combine(temp.Sub("out"), "hybrid"), ["init", "--name", "Solo", "--home", temp.Sub("home")], new() { ["PATH"] = "/nonexistent", ["DOTNET_ROOT"] = "/nonexistent" });
        Assert.True(init.ExitCode == 0, init.Output);
        Assert.True(Hybrid.Protocol.Identity.PeerId.TryParse(init.Output.Trim(), out _, out var error), $"'hybrid init' printed no PeerId ({error}): {init.Output}");
    }

    private static Task<(int ExitCode, string Output)> HelmAsync(string[] args) => RunAsync(Tool("helm"), args, []);

    private static string Tool(string name)
    {
        var local = Path.Combine(Root, ".tools", "bin", name);
        if (File.Exists(local))
        {
            return local;
        }

        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
        return onPath ?? throw new InvalidOperationException($"{name} is not installed: run scripts/install-deps.sh");
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] args, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(bounded.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private static int CountOf(string text, string part) => (text.Length - text.Replace(part, string.Empty, StringComparison.Ordinal).Length) / part.Length;

    private sealed record ServiceMonitorManifest(string Yaml);
}
