using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// One-off calls to the supernode network without a session: tries each known supernode in turn
/// and moves on when one is unavailable. For commands that only need the index (search, lookup,
/// publishing signed objects).
/// </summary>
public sealed class SupernodeCaller : IDisposable
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<string> _urls;
    private readonly TimeSpan _timeout;
    private int _forged;

    /// <summary>Creates a caller over <paramref name="urls"/>, each call bounded by <paramref name="timeout"/>.</summary>
    public SupernodeCaller(IReadOnlyList<string> urls, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(urls);
        if (urls.Count == 0)
        {
            throw new ArgumentException("no supernode URL given", nameof(urls));
        }

        _urls = urls;
        _timeout = timeout ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>
    /// Runs <paramref name="call"/> against the first supernode that answers. Only transport
    /// failures move on to the next; a supernode's answer (even a refusal) is final.
    /// </summary>
    public Task<T> CallAsync<T>(Func<Protocol.Api.SupernodeClients, CallOptions, Task<T>> call, CancellationToken cancellationToken = default) =>
        FirstAnsweringAsync(_urls, Channel, call, _timeout, cancellationToken, OnForged);

    /// <summary>Answers that did not verify, dropped (each from the supernode named in it).</summary>
    public int ForgedAnswers => _forged;

    /// <summary>A supernode's answer did not verify; it was dropped and the next supernode asked.</summary>
    public event EventHandler<ForgedAnswerException>? ForgedAnswerReceived;

    /// <summary>A peer's key, presence and signed profile, verified against its PeerId.</summary>
    public Task<PeerInfo> LookupPeerAsync(PeerId peer, CancellationToken cancellationToken = default) =>
        CallAsync(async (c, o) => SupernodeAnswers.CheckPeer(peer, await c.Directory.LookupPeerAsync(new LookupPeerRequest { PeerId = peer.ToString() }, o), DateTimeOffset.UtcNow), cancellationToken);

    /// <summary>A listing as its seller signed it.</summary>
    public Task<ListingRecord> GetListingAsync(string listingId, CancellationToken cancellationToken = default) =>
        CallAsync(async (c, o) => SupernodeAnswers.CheckListing(await c.Listings.GetListingAsync(new GetListingRequest { ListingId = listingId }, o), DateTimeOffset.UtcNow), cancellationToken);

    /// <summary>Search results, every hit as its seller signed it; a supernode sending any forged hit is not believed at all.</summary>
    public Task<SearchResponse> SearchAsync(SearchRequest request, CancellationToken cancellationToken = default) =>
        CallAsync(
            async (c, o) =>
            {
                var checkedHits = SupernodeAnswers.CheckSearch(await c.Listings.SearchAsync(request, o), DateTimeOffset.UtcNow, out var dropped);
                return dropped == 0 ? checkedHits : throw new ForgedAnswerException($"{dropped} search hits do not verify");
            },
            cancellationToken);

    /// <summary>A seller's listings, each as the seller signed it.</summary>
    public Task<ListingPage> ListBySellerAsync(ListBySellerRequest request, CancellationToken cancellationToken = default) =>
        CallAsync(
            async (c, o) =>
            {
                var checkedPage = SupernodeAnswers.CheckPage(await c.Listings.ListBySellerAsync(request, o), DateTimeOffset.UtcNow, out var dropped);
                return dropped == 0 ? checkedPage : throw new ForgedAnswerException($"{dropped} listings do not verify");
            },
            cancellationToken);

    /// <summary>Reviews of a peer, each verified with its receipt and shown as signed.</summary>
    public Task<ReviewPage> ListReviewsAsync(PeerId reviewed, int limit, string pageToken = "", CancellationToken cancellationToken = default) =>
        CallAsync(async (c, o) => SupernodeAnswers.CheckReviews(reviewed, await c.Reputation.ListReviewsAsync(new ListReviewsRequest { PeerId = reviewed.ToString(), Limit = limit, PageToken = pageToken }, o), DateTimeOffset.UtcNow), cancellationToken);

    private void OnForged(ForgedAnswerException forged)
    {
        Interlocked.Increment(ref _forged);
        ForgedAnswerReceived?.Invoke(this, forged);
    }

    /// <summary>The rule behind <see cref="CallAsync{T}"/>, over any list of supernodes and channels.</summary>
    /// <remarks>
    /// An answer that does not verify (<see cref="ForgedAnswerException"/>) is no answer: it is reported
    /// to <paramref name="forged"/> with the supernode that sent it, and the next supernode is asked.
    /// </remarks>
    internal static async Task<T> FirstAnsweringAsync<T>(IEnumerable<string> urls, Func<string, GrpcChannel> channel, Func<Protocol.Api.SupernodeClients, CallOptions, Task<T>> call, TimeSpan timeout, CancellationToken cancellationToken, Action<ForgedAnswerException>? forged = null)
    {
        ArgumentNullException.ThrowIfNull(call);
        Exception? last = null;
        foreach (var url in urls)
        {
            try
            {
                var options = new CallOptions(deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken);
                return await call(new Protocol.Api.SupernodeClients(channel(url)), options);
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                last = ex;
            }
            catch (ForgedAnswerException ex)
            {
                var attributed = new ForgedAnswerException(ex.Message) { SupernodeUrl = url };
                forged?.Invoke(attributed);
                last = attributed;
            }
        }

        throw last switch
        {
            ForgedAnswerException f => new RpcException(new Status(StatusCode.Unavailable, $"no supernode gave an answer that verifies (last, {f.SupernodeUrl}: {f.Message})")),
            RpcException r => r,
            _ => new RpcException(new Status(StatusCode.Unavailable, "no supernode is known")),
        };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
    }

    private GrpcChannel Channel(string url)
    {
        if (!_channels.TryGetValue(url, out var channel))
        {
            channel = GrpcChannel.ForAddress(url);
            _channels[url] = channel;
        }

        return channel;
    }
}
