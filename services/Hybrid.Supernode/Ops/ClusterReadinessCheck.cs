using Hybrid.Supernode.Cluster;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Hybrid.Supernode.Ops;

/// <summary>Ready once the silo is active in its cluster and the supernode is registered.</summary>
public sealed class ClusterReadinessCheck(SupernodeRegistration registration) : IHealthCheck
{
    public const string ReadyTag = "ready";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(registration.IsReady
            ? HealthCheckResult.Healthy($"serving as {registration.AdvertisedUrl}")
            : HealthCheckResult.Unhealthy("the silo has not joined the cluster yet"));
}
