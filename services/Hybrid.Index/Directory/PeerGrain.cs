using System.Collections.Immutable;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;

namespace Hybrid.Index.Directory;

/// <summary>Durable part of a peer: what it signed and when it was last seen.</summary>
[GenerateSerializer, Alias("hybrid.PeerState")]
public sealed class PeerState
{
    [Id(0)] public byte[]? PublicKey { get; set; }

    [Id(1)] public SignedProfile? Profile { get; set; }

    [Id(2)] public DateTimeOffset FirstSeen { get; set; }

    [Id(3)] public DateTimeOffset LastSeen { get; set; }
}

/// <inheritdoc cref="IPeerGrain"/>
public sealed class PeerGrain(
    [PersistentState("peer", IndexStorage.ProviderName)] IPersistentState<PeerState> state,
    IClusterMembershipService membership,
    TimeProvider time) : Grain, IPeerGrain
{
    // Last-seen while online is written at most this often (a session's close writes it exactly):
    // written on every renewal, held sessions would be a steady write load.
    private static readonly TimeSpan LastSeenWriteInterval = TimeSpan.FromMinutes(5);

    private Presence? _presence;

    public async Task<IndexResult> OpenSession(SessionClaim claim)
    {
        ArgumentNullException.ThrowIfNull(claim);
        if (!OwnsKey(claim.PublicKey))
        {
            return new IndexResult(IndexOutcome.KeyMismatch, "the session key does not belong to this peer id");
        }

        if (state.State.PublicKey is null && !claim.MayCreate)
        {
            return NewIdentity();
        }

        var accepted = claim.Profile is { } profile ? Accept(profile) : null;
        if (accepted is { Succeeded: false })
        {
            return accepted;
        }

        var now = time.GetUtcNow();
        // A returning peer with nothing new (a reconnect, or every peer of a restarted supernode at
        // once) writes nothing: presence is soft state, and last-seen is written once a minute.
        var changed = state.State.PublicKey is null || accepted?.Outcome == IndexOutcome.Applied || now - state.State.LastSeen >= LastSeenWriteInterval;
        state.State.PublicKey ??= claim.PublicKey;
        if (state.State.FirstSeen == default)
        {
            state.State.FirstSeen = now;
        }

        if (changed)
        {
            state.State.LastSeen = now;
            await WriteAsync();
        }

        _presence = new Presence(claim.SessionId, [], claim.Endpoints, claim.SupernodeUrl, claim.Holder, now + claim.Lease, state.State.LastSeen);
        return new IndexResult(IndexOutcome.Applied, "session opened");
    }

    public async Task<IndexResult> RenewSession(Guid sessionId, TimeSpan lease)
    {
        if (_presence is not { } presence || presence.SessionId != sessionId)
        {
            return NotCurrent();
        }

        var now = time.GetUtcNow();
        _presence = presence with { LeaseExpires = now + lease };
        if (now - presence.LastSeenWritten >= LastSeenWriteInterval)
        {
            // Best effort: the lease is renewed whether or not the store takes last-seen now; a
            // failed write is tried again at the next heartbeat, and the session goes on.
            var previous = state.State.LastSeen;
            state.State.LastSeen = now;
            try
            {
                await state.WriteStateAsync();
                _presence = _presence with { LastSeenWritten = now };
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                state.State.LastSeen = previous;
            }
        }

        return new IndexResult(IndexOutcome.Applied, "lease renewed");
    }

    public Task<IndexResult> UpdateEndpoints(Guid sessionId, IReadOnlyList<string> endpoints)
    {
        if (_presence is not { } presence || presence.SessionId != sessionId)
        {
            return Task.FromResult(NotCurrent());
        }

        _presence = presence with
        {
            Endpoints = [.. presence.Endpoints.Where(endpoints.Contains)],
            Candidates = [.. endpoints.Where(e => !presence.Endpoints.Contains(e))],
        };
        return Task.FromResult(new IndexResult(IndexOutcome.Applied, "endpoints updated"));
    }

    public Task<IndexResult> UpdateReachability(Guid sessionId, IReadOnlyList<string> verified, IReadOnlyList<string> candidates)
    {
        if (_presence is not { } presence || presence.SessionId != sessionId)
        {
            return Task.FromResult(NotCurrent());
        }

        _presence = presence with { Endpoints = [.. verified], Candidates = [.. candidates.Where(c => !verified.Contains(c))] };
        return Task.FromResult(new IndexResult(IndexOutcome.Applied, "reachability recorded"));
    }

    public async Task CloseSession(Guid sessionId)
    {
        if (_presence is not { } presence || presence.SessionId != sessionId)
        {
            return;
        }

        _presence = null;
        state.State.LastSeen = time.GetUtcNow();
        await WriteAsync();
    }

    public async Task<IndexResult> PublishProfile(byte[] publicKey, SignedProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (!OwnsKey(publicKey))
        {
            return new IndexResult(IndexOutcome.KeyMismatch, "the profile's signer is not this peer");
        }

        var accepted = Accept(profile);
        if (accepted.Outcome == IndexOutcome.Applied)
        {
            state.State.PublicKey ??= publicKey;
            await WriteAsync();
        }

        return accepted;
    }

    public Task<PeerSnapshot?> Describe()
    {
        if (state.State.PublicKey is not { } key)
        {
            return Task.FromResult<PeerSnapshot?>(null);
        }

        var now = time.GetUtcNow();
        var online = _presence is { } p && p.LeaseExpires > now && HolderLives(p);
        return Task.FromResult<PeerSnapshot?>(new PeerSnapshot(
            key,
            state.State.Profile?.Envelope,
            online,
            online ? _presence!.Endpoints : [],
            online ? now : state.State.LastSeen,
            online ? _presence!.SupernodeUrl : null,
            online ? _presence!.Candidates : []));
    }

    public async Task<IndexResult> Admit(byte[] publicKey, bool mayCreate)
    {
        if (!OwnsKey(publicKey))
        {
            return new IndexResult(IndexOutcome.KeyMismatch, "the key does not belong to this peer id");
        }

        if (state.State.PublicKey is not null)
        {
            return new IndexResult(IndexOutcome.Unchanged, "known identity");
        }

        if (!mayCreate)
        {
            return NewIdentity();
        }

        var now = time.GetUtcNow();
        state.State.PublicKey = publicKey;
        state.State.FirstSeen = now;
        state.State.LastSeen = now;
        await WriteAsync();
        return new IndexResult(IndexOutcome.Applied, "identity admitted");
    }

    /// <summary>
    /// Writes the peer's record. If the write fails, this activation's copy is ahead of the store:
    /// it is dropped, so the next call reads what is stored and a retry writes again rather than
    /// finding its change "unchanged".
    /// </summary>
    private async Task WriteAsync()
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            _presence = null;
            this.DeactivateOnIdle();
            throw;
        }
    }

    private static IndexResult NewIdentity() =>
        new(IndexOutcome.NewIdentity, "this identity is new to the network");

    private bool OwnsKey(byte[] publicKey) =>
        PeerId.TryParse(this.GetPrimaryKeyString(), out var id, out _) && id.Matches(publicKey);

    private IndexResult Accept(SignedProfile profile)
    {
        var stored = state.State.Profile;
        try
        {
            if (!SignedEnvelopes.SupersedesStored(EnvelopeKinds.Profile, profile.Version, profile.Payload, stored?.Version, stored is null ? default : stored.Payload))
            {
                return new IndexResult(IndexOutcome.Unchanged, "profile unchanged");
            }
        }
        catch (EnvelopeRejectedException ex)
        {
            return new IndexResult(IndexOutcome.Replayed, ex.Message);
        }

        state.State.Profile = profile;
        return new IndexResult(IndexOutcome.Applied, "profile stored");
    }

    private static IndexResult NotCurrent() =>
        new(IndexOutcome.NotCurrentSession, "this session is no longer the peer's current session");

    /// <summary>
    /// Whether the silo holding the session is not known dead: a supernode killed outright cannot
    /// close its sessions, and its peers show offline once membership declares it dead, long before
    /// their leases run out. (A holder this silo has not heard of yet counts as alive.)
    /// </summary>
    private bool HolderLives(Presence presence) =>
        presence.Holder is not { } holder || membership.CurrentSnapshot.GetSiloStatus(holder) != SiloStatus.Dead;

    private sealed record Presence(Guid SessionId, ImmutableArray<string> Endpoints, ImmutableArray<string> Candidates, string SupernodeUrl, SiloAddress? Holder, DateTimeOffset LeaseExpires, DateTimeOffset LastSeenWritten);
}
