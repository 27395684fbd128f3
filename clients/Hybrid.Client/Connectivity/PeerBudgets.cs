using System.Threading.RateLimiting;
using Hybrid.Client.Store;
using Hybrid.Protocol.Identity;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// Limits of what other peers may make this peer do and store. A <em>contact</em> is a peer this
/// user has dealt with (wrote to, ordered from, accepted an order of); everyone else is a stranger,
/// and strangers, who may have unlimited fresh keys, share one small budget besides their own.
/// </summary>
public sealed class PeerBudgetOptions
{
    /// <summary>Calls (chats, order steps, manifests) a contact may make per minute.</summary>
    public int ContactCallsPerMinute { get; init; } = 240;

    /// <summary>Calls one stranger may make per minute.</summary>
    public int StrangerCallsPerMinute { get; init; } = 20;

    /// <summary>Calls all strangers together may make per minute.</summary>
    public int AllStrangersCallsPerMinute { get; init; } = 300;

    /// <summary>Chat messages kept from one contact.</summary>
    public int ContactStoredChats { get; init; } = 100_000;

    /// <summary>Chat messages kept from one stranger (until the user answers, which makes it a contact).</summary>
    public int StrangerStoredChats { get; init; } = 100;

    /// <summary>Chat messages kept from all strangers together.</summary>
    public int AllStrangersStoredChats { get; init; } = 5_000;

    /// <summary>Unanswered offers kept from one contact.</summary>
    public int ContactOpenOffers { get; init; } = 500;

    /// <summary>Unanswered offers kept from one stranger.</summary>
    public int StrangerOpenOffers { get; init; } = 5;

    /// <summary>Unanswered offers kept from everyone together.</summary>
    public int AllOpenOffers { get; init; } = 2_000;

    /// <summary>Checks the settings, naming any that is out of range.</summary>
    public void Validate()
    {
        foreach (var (name, value) in new (string, int)[]
        {
            (nameof(ContactCallsPerMinute), ContactCallsPerMinute), (nameof(StrangerCallsPerMinute), StrangerCallsPerMinute),
            (nameof(AllStrangersCallsPerMinute), AllStrangersCallsPerMinute), (nameof(ContactStoredChats), ContactStoredChats),
            (nameof(StrangerStoredChats), StrangerStoredChats), (nameof(AllStrangersStoredChats), AllStrangersStoredChats),
            (nameof(ContactOpenOffers), ContactOpenOffers), (nameof(StrangerOpenOffers), StrangerOpenOffers), (nameof(AllOpenOffers), AllOpenOffers),
        })
        {
            if (value < 1)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least 1");
            }
        }
    }
}

/// <summary>
/// Enforces <see cref="PeerBudgetOptions"/> for the peer host: call rates per remote peer (token
/// buckets, tiered by contact or stranger, plus one shared bucket for all strangers) and storage
/// quotas for incoming chats and offers. Refusals are <see cref="RefusedException"/>s with a
/// sentence for the remote peer; nothing here grows with the number of keys that call.
/// </summary>
public sealed class PeerBudgets : IDisposable
{
    private readonly PeerBudgetOptions _options;
    private readonly LocalStore _store;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _contacts;
    private readonly Dictionary<string, int> _storedChats;
    private readonly PartitionedRateLimiter<(string Peer, bool Contact)> _perPeer;
    private readonly TokenBucketRateLimiter _allStrangers;
    private int _strangerChats;
    private long _refused;

    public PeerBudgets(LocalStore store, PeerBudgetOptions options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _store = store;
        _contacts = store.Contacts();
        _storedChats = store.IncomingChatCounts();
        _strangerChats = _storedChats.Where(c => !_contacts.Contains(c.Key)).Sum(c => c.Value);
        _perPeer = PartitionedRateLimiter.Create<(string Peer, bool Contact), (string, bool)>(key =>
            RateLimitPartition.GetTokenBucketLimiter(key, k => PerMinute(k.Item2 ? options.ContactCallsPerMinute : options.StrangerCallsPerMinute)));
        _allStrangers = new TokenBucketRateLimiter(PerMinute(options.AllStrangersCallsPerMinute));
    }

    /// <summary>Calls and messages refused by a budget since start.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Whether <paramref name="peer"/> is a contact of this user.</summary>
    public bool IsContact(PeerId peer)
    {
        lock (_gate)
        {
            return _contacts.Contains(peer.ToString());
        }
    }

    /// <summary>Records that this user dealt with <paramref name="peer"/> (wrote, ordered, accepted): it gets a contact's budget.</summary>
    public void AddContact(PeerId peer)
    {
        var key = peer.ToString();
        lock (_gate)
        {
            if (_contacts.Add(key))
            {
                _strangerChats -= _storedChats.GetValueOrDefault(key);
            }
        }
    }

    /// <summary>Takes one call from <paramref name="peer"/>'s rate budget, or refuses it.</summary>
    public void AdmitCall(PeerId peer)
    {
        var contact = IsContact(peer);
        using (var lease = _perPeer.AttemptAcquire((peer.ToString(), contact)))
        {
            if (!lease.IsAcquired)
            {
                throw Count(Refuse.Exhausted(
                    contact ? "you are sending this peer too much at once; slow down and try again in a minute" : "this peer takes only a few messages a minute from someone it has not dealt with; try again in a minute",
                    RetryAfter(lease)));
            }
        }

        if (!contact)
        {
            using var shared = _allStrangers.AttemptAcquire();
            if (!shared.IsAcquired)
            {
                throw Count(Refuse.Exhausted("this peer is receiving too much from new contacts right now; try again in a minute", RetryAfter(shared)));
            }
        }
    }

    /// <summary>
    /// Stores an incoming chat from <paramref name="peer"/> through <paramref name="add"/> (which
    /// says whether it was new) if its storage quota allows; refuses it otherwise.
    /// </summary>
    public bool StoreChat(PeerId peer, Func<bool> add)
    {
        ArgumentNullException.ThrowIfNull(add);
        var key = peer.ToString();
        lock (_gate)
        {
            var contact = _contacts.Contains(key);
            var held = _storedChats.GetValueOrDefault(key);
            if (held >= (contact ? _options.ContactStoredChats : _options.StrangerStoredChats))
            {
                throw Count(Refuse.Exhausted(contact
                    ? $"this peer keeps at most {_options.ContactStoredChats} messages from one peer and holds that many of yours"
                    : $"this peer keeps at most {_options.StrangerStoredChats} messages from someone it has not dealt with until its owner answers; wait for an answer"));
            }

            if (!contact && _strangerChats >= _options.AllStrangersStoredChats)
            {
                throw Count(Refuse.Exhausted("this peer holds as many messages from new contacts as it keeps; try again after its owner has read them"));
            }

            if (!add())
            {
                return false;
            }

            _storedChats[key] = held + 1;
            if (!contact)
            {
                _strangerChats++;
            }

            return true;
        }
    }

    /// <summary>Refuses a new offer from <paramref name="buyer"/> when it already has as many unanswered offers here as its quota allows.</summary>
    public void CheckOffer(PeerId buyer)
    {
        var contact = IsContact(buyer);
        var limit = contact ? _options.ContactOpenOffers : _options.StrangerOpenOffers;
        if (_store.CountOpenOffers(buyer) >= limit)
        {
            throw Count(Refuse.Exhausted($"you have {limit} offers this seller has not answered yet; wait for an answer before offering again"));
        }

        if (_store.CountOpenOffers(null) >= _options.AllOpenOffers)
        {
            throw Count(Refuse.Exhausted("this seller has more unanswered offers than it takes; try again later"));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _perPeer.Dispose();
        _allStrangers.Dispose();
    }

    private RefusedException Count(RefusedException refusal)
    {
        Interlocked.Increment(ref _refused);
        return refusal;
    }

    private static TokenBucketRateLimiterOptions PerMinute(int calls) => new()
    {
        TokenLimit = Math.Max(1, calls / 4),
        TokensPerPeriod = Math.Max(1, calls / 60),
        ReplenishmentPeriod = TimeSpan.FromSeconds(calls >= 60 ? 1 : 60.0 / calls),
        QueueLimit = 0,
        AutoReplenishment = true,
    };

    private static TimeSpan? RetryAfter(RateLimitLease lease) =>
        lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : null;
}
