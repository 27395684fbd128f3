namespace Hybrid.Client;

/// <summary>Why the client refused or could not do something; one interceptor turns each into a gRPC status.</summary>
public enum Refusal
{
    /// <summary>The request itself is wrong (a bad id, an empty message, a signature that does not verify).</summary>
    Invalid,

    /// <summary>The thing asked about does not exist here.</summary>
    NotFound,

    /// <summary>Something else already holds that id.</summary>
    Conflict,

    /// <summary>The caller may not do this.</summary>
    NotAllowed,

    /// <summary>Not in the current state of things (an order not yet accepted, a listing withdrawn).</summary>
    WrongState,

    /// <summary>A budget or quota of the caller is spent; it may try again later.</summary>
    Exhausted,

    /// <summary>A position past the end.</summary>
    OutOfRange,

    /// <summary>Data arrived damaged or did not match what was signed.</summary>
    Corrupt,

    /// <summary>Something this depends on cannot be reached now.</summary>
    Unavailable,
}

/// <summary>
/// A refusal of the client's domain code (chats, orders, mailbox, transfers), written as a sentence
/// for whoever asked: the local user or a remote peer. It carries no internal detail.
/// </summary>
public sealed class RefusedException : Exception
{
    public RefusedException()
    {
    }

    public RefusedException(string message)
        : base(message)
    {
    }

    public RefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public RefusedException(Refusal reason, string message, Exception? innerException = null)
        : base(message, innerException) => Reason = reason;

    /// <summary>What kind of refusal this is.</summary>
    public Refusal Reason { get; }

    /// <summary>How long the caller should wait before trying again, when a budget is spent.</summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>Short ways to make a <see cref="RefusedException"/>.</summary>
public static class Refuse
{
    public static RefusedException Invalid(string message) => new(Refusal.Invalid, message);

    public static RefusedException NotFound(string message) => new(Refusal.NotFound, message);

    public static RefusedException Conflict(string message) => new(Refusal.Conflict, message);

    public static RefusedException NotAllowed(string message) => new(Refusal.NotAllowed, message);

    public static RefusedException WrongState(string message) => new(Refusal.WrongState, message);

    public static RefusedException Exhausted(string message, TimeSpan? retryAfter = null) => new(Refusal.Exhausted, message) { RetryAfter = retryAfter };

    public static RefusedException OutOfRange(string message) => new(Refusal.OutOfRange, message);

    public static RefusedException Corrupt(string message) => new(Refusal.Corrupt, message);

    public static RefusedException Unavailable(string message, Exception? cause = null) => new(Refusal.Unavailable, message, cause);
}
