using Grpc.Core;
using Hybrid.Index.Directory;

namespace Hybrid.Supernode.Api;

/// <summary>The gRPC status for each refused index write.</summary>
public static class IndexStatus
{
    public static StatusCode For(IndexOutcome outcome) => outcome switch
    {
        IndexOutcome.Applied or IndexOutcome.Unchanged => StatusCode.OK,
        IndexOutcome.Replayed => StatusCode.AlreadyExists,
        IndexOutcome.KeyMismatch => StatusCode.PermissionDenied,
        IndexOutcome.NotCurrentSession or IndexOutcome.NewIdentity => StatusCode.FailedPrecondition,
        _ => StatusCode.Internal,
    };
}
