using Grpc.Core;
using Hybrid.Protocol.Identity;

namespace Hybrid.Supernode.Api;

/// <summary>Checks shared by the API services, each refusal an InvalidArgument a person can act on.</summary>
internal static class Requests
{
    public static PeerId ParsePeer(string text, string what) =>
        PeerId.TryParse(text, out var peer, out var error) ? peer : throw Invalid($"{what}: {error}");

    public static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>A page offset from a token this supernode issued (the offset as digits).</summary>
    public static int Offset(string token) =>
        string.IsNullOrEmpty(token) ? 0
        : int.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var offset) ? offset
        : throw Invalid("page_token is not one this supernode issued");
}
