using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Hybrid.Index.Listings;
using Hybrid.Index.Search;
using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Listings;
using Hybrid.Protocol.V1;
using Hybrid.Supernode.Ops;
using Prometheus;

namespace Hybrid.Supernode.Api;

/// <summary>Listings and search: verify the seller's signature and the listing rules, then call the listing's shard.</summary>
public sealed class ListingsService(
    ShardedSearch search,
    RequestLimits limits,
    IdentityAdmission admission,
    Federation.FederationIdentity federation,
    SupernodeMetrics metrics,
    ReplyPages pages,
    TimeProvider time) : ListingsApi.ListingsApiBase
{
    public const int DefaultLimit = 20;
    public const int MaxLimit = 100;
    public const int MaxPagedResults = 1000;
    public const int MaxQueryLength = 256;

    public override async Task<PublishListingResponse> PublishListing(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        CheckedListing listing;
        try
        {
            listing = ListingIntake.Check(request, time.GetUtcNow());
        }
        catch (ListingRefusedException ex)
        {
            throw Requests.Invalid(ex.Message);
        }

        var verified = listing.Verified;
        await admission.EnsureKnownAsync(verified.Signer, request.SignerPublicKey.ToByteArray(), context);

        var result = await search.ShardOf(listing.Stored.ListingId).Publish(listing.Stored with { Origin = federation.ClusterId.ToString() });
        metrics.Publishes.WithLabels(result.Outcome.ToString().ToLowerInvariant()).Inc();
        Ensure(result);
        return new PublishListingResponse { ListingId = listing.Stored.ListingId, Version = verified.Version, ExpiresMs = verified.Payload.ExpiresAtMs };
    }

    public override async Task<WithdrawListingResponse> WithdrawListing(SignedEnvelope request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var verified = SignedEnvelopes.Verify(request, EnvelopeKinds.Withdrawal, time.GetUtcNow());
        var withdrawal = verified.Body(ListingWithdrawal.Parser);
        RequireListingId(withdrawal.ListingId);
        var result = await search.ShardOf(withdrawal.ListingId).Withdraw(withdrawal.ListingId, verified.Signer.ToString(), verified.Version, request.ToByteArray());
        metrics.Withdrawals.WithLabels(result.Outcome.ToString().ToLowerInvariant()).Inc();
        Ensure(result);
        return new WithdrawListingResponse { ListingId = withdrawal.ListingId };
    }

    public override async Task<ListingRecord> GetListing(GetListingRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        RequireListingId(request.ListingId);
        var stored = await search.ShardOf(request.ListingId).Find(request.ListingId)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no listing {request.ListingId}"));
        var state = stored.Withdrawn ? ListingState.Withdrawn
            : stored.ExpiresMs <= time.GetUtcNow().ToUnixTimeMilliseconds() ? ListingState.Expired
            : ListingState.Active;
        return Record(stored, state);
    }

    public override async Task<SearchResponse> Search(SearchRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var query = ToQuery(request);
        var (offset, limit) = Paging(query, request.Limit, request.PageToken);
        SearchPage page;
        using (metrics.SearchSeconds.NewTimer())
        {
            page = await search.SearchAsync(query, offset, limit);
        }

        var response = new SearchResponse { TotalHits = page.TotalHits };
        var taken = pages.Fill(response.Hits, page.Hits, h => Hit(Record(h.Listing, ListingState.Active), h.Score, query.Near));
        response.NextPageToken = page.HasMore || taken < page.Hits.Count ? PageToken(query, offset + taken) : string.Empty;
        if (page.Facets is { } facets)
        {
            response.Facets = Facets(facets, query.Currency);
        }

        response.Suggestion = page.Suggestion ?? string.Empty;
        response.DroppedWords.AddRange(page.DroppedWords ?? []);

        return response;
    }

    private static SearchHit Hit(ListingRecord record, float score, GeoCircle? near)
    {
        var hit = new SearchHit { Record = record, Score = score };
        if (near is not null && Geo.DistanceKm(near.Latitude, near.Longitude, record.Listing.Location) is { } km)
        {
            hit.DistanceKm = Math.Round(km, 3);
        }

        return hit;
    }

    /// <summary>The counts as the API shows them: most first (ties by name), prices cheapest first, empty buckets left out.</summary>
    private static Protocol.V1.SearchFacets Facets(Hybrid.Index.Listings.FacetCounts facets, string? currency)
    {
        static IEnumerable<FacetCount> Counts(IReadOnlyDictionary<string, long> counts) =>
            counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new FacetCount { Value = kv.Key, Count = kv.Value });

        var answer = new Protocol.V1.SearchFacets();
        answer.Categories.AddRange(Counts(facets.Categories));
        answer.Countries.AddRange(Counts(facets.Countries));
        answer.Currencies.AddRange(Counts(facets.Currencies));
        var edges = Hybrid.Index.Listings.FacetCounts.PriceEdgesMicros;
        for (var i = 0; currency is not null && i < facets.PriceBuckets.Length; i++)
        {
            if (facets.PriceBuckets[i] == 0)
            {
                continue;
            }

            var bucket = new PriceBucket { Min = ListingRules.FromMicros(edges[i], currency), Count = facets.PriceBuckets[i] };
            if (i + 1 < edges.Length)
            {
                bucket.Max = ListingRules.FromMicros(edges[i + 1], currency);
            }

            answer.Prices.Add(bucket);
        }

        return answer;
    }

    public override async Task<ListingPage> ListBySeller(ListBySellerRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        limits.Call(context);
        var seller = Requests.ParsePeer(request.Seller, "seller");
        var query = new SearchQuery(string.Empty, null, null, null, null, null, null, seller.ToString(), null, SearchOrder.Newest);
        var (offset, limit) = Paging(query, request.Limit, request.PageToken);
        var page = await search.SearchAsync(query, offset, limit);
        var response = new ListingPage { TotalHits = page.TotalHits };
        var taken = pages.Fill(response.Listings, page.Hits, h => Record(h.Listing, ListingState.Active));
        response.NextPageToken = page.HasMore || taken < page.Hits.Count ? PageToken(query, offset + taken) : string.Empty;
        return response;
    }

    public override Task<ListCategoriesResponse> ListCategories(ListCategoriesRequest request, ServerCallContext context)
    {
        var response = new ListCategoriesResponse();
        response.Categories.AddRange(ListingRules.Categories);
        return Task.FromResult(response);
    }

    private static SearchQuery ToQuery(SearchRequest request)
    {
        if (request.Text.Length > MaxQueryLength)
        {
            throw Requests.Invalid($"query text is {request.Text.Length} characters; at most {MaxQueryLength}");
        }

        var currency = Optional(request.Currency);
        long? min = null, max = null;
        foreach (var (bound, name) in new[] { (request.MinPrice, "min_price"), (request.MaxPrice, "max_price") })
        {
            if (bound is null)
            {
                continue;
            }

            if (ListingRules.PriceProblem(bound) is { } problem)
            {
                throw Requests.Invalid($"{name}: {problem}");
            }

            if (currency is not null && bound.Currency != currency)
            {
                throw Requests.Invalid($"{name} is in {bound.Currency} but the search asks for {currency}");
            }

            currency = bound.Currency;
        }

        if (request.MinPrice is not null && request.MaxPrice is not null && request.MinPrice.Currency != request.MaxPrice.Currency)
        {
            throw Requests.Invalid("min_price and max_price must be in the same currency");
        }

        min = request.MinPrice is null ? null : ListingRules.ToMicros(request.MinPrice);
        max = request.MaxPrice is null ? null : ListingRules.ToMicros(request.MaxPrice);
        if (min > max)
        {
            throw Requests.Invalid("min_price is above max_price");
        }

        if (currency is not null && !ListingRules.IsCurrency(currency))
        {
            throw Requests.Invalid($"currency '{currency}' is not an ISO 4217 code such as EUR or USD");
        }

        var category = Optional(request.Category);
        if (category is not null && !ListingRules.IsCategory(category))
        {
            throw Requests.Invalid($"category '{category}' is not one of: {string.Join(", ", ListingRules.Categories)}");
        }

        var seller = Optional(request.Seller) is { } s ? Requests.ParsePeer(s, "seller").ToString() : null;
        if (!Enum.IsDefined(request.Sort))
        {
            throw Requests.Invalid($"sort {(int)request.Sort} is not one of relevance, price ascending, price descending, newest, distance");
        }

        GeoCircle? near = null;
        if (request.Near is { } point)
        {
            if (!Geo.IsPoint(point.Latitude, point.Longitude))
            {
                throw Requests.Invalid($"near ({point.Latitude}, {point.Longitude}) is not a point: latitude -90..90 and longitude -180..180 degrees");
            }

            if (!double.IsFinite(request.WithinKm) || request.WithinKm < 0 || request.WithinKm > Geo.MaxDistanceKm)
            {
                throw Requests.Invalid($"within_km is a distance 0-{Geo.MaxDistanceKm:0} km (0: no limit; got {request.WithinKm})");
            }

            near = new GeoCircle(point.Latitude, point.Longitude, request.WithinKm);
        }
        else if (request.WithinKm != 0 || request.Sort == SearchSort.Distance)
        {
            throw Requests.Invalid("within_km and the distance sort need near: the point to measure from");
        }

        return new SearchQuery(
            request.Text,
            min,
            max,
            currency,
            category,
            Optional(request.Country)?.ToUpperInvariant(),
            Optional(request.Region),
            seller,
            Optional(request.GeohashPrefix)?.ToLowerInvariant(),
            (SearchOrder)(int)request.Sort,
            request.TypeAhead,
            request.MinReputation is >= 0 and <= 100 ? request.MinReputation : throw Requests.Invalid($"min_reputation is a trust score 0-100 (got {request.MinReputation})"),
            request.Facets,
            near);
    }

    private static (int Offset, int Limit) Paging(SearchQuery query, int requestedLimit, string token)
    {
        if (requestedLimit is < 0 or > MaxLimit)
        {
            throw Requests.Invalid($"limit must be 1-{MaxLimit} (got {requestedLimit})");
        }

        var limit = requestedLimit == 0 ? DefaultLimit : requestedLimit;
        if (string.IsNullOrEmpty(token))
        {
            return (0, limit);
        }

        var parts = token.Split('.');
        if (parts.Length != 2 || !int.TryParse(parts[0], System.Globalization.CultureInfo.InvariantCulture, out var offset) || offset < 0 || parts[1] != Fingerprint(query))
        {
            throw Requests.Invalid("page token does not belong to this query: repeat the query without a token");
        }

        if (offset >= MaxPagedResults)
        {
            throw Requests.Invalid($"results past the first {MaxPagedResults} are not paged; narrow the query");
        }

        return (offset, Math.Min(limit, MaxPagedResults - offset));
    }

    private static string PageToken(SearchQuery query, int offset) =>
        offset >= MaxPagedResults ? string.Empty : $"{offset.ToString(System.Globalization.CultureInfo.InvariantCulture)}.{Fingerprint(query)}";

    // A page token is bound to its query, so it cannot be replayed against another one (whether
    // the counts are asked for does not change which listings the pages hold).
    private static string Fingerprint(SearchQuery query) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes((query with { Facets = false }).ToString())), 0, 8);

    private static ListingRecord Record(StoredListing stored, ListingState state)
    {
        var envelope = SignedEnvelope.Parser.ParseFrom(stored.Envelope);
        return new ListingRecord
        {
            Envelope = envelope,
            Listing = Listing.Parser.ParseFrom(EnvelopePayload.Parser.ParseFrom(envelope.Payload).Body),
            Seller = stored.Seller,
            Version = stored.Version,
            ExpiresMs = stored.ExpiresMs,
            State = state,
            OriginCluster = stored.Origin ?? string.Empty,
        };
    }

    private static void Ensure(ListingWriteResult result)
    {
        if (!result.Succeeded)
        {
            var code = result.Outcome switch
            {
                ListingOutcome.Replayed => StatusCode.AlreadyExists,
                ListingOutcome.NotSeller => StatusCode.PermissionDenied,
                ListingOutcome.NotFound => StatusCode.NotFound,
                ListingOutcome.OverQuota => StatusCode.ResourceExhausted,
                _ => StatusCode.Internal,
            };
            throw new RpcException(new Status(code, result.Message));
        }
    }

    private static void RequireListingId(string id)
    {
        if (!ListingRules.IsListingId(id, out var error))
        {
            throw Requests.Invalid(error);
        }
    }


    private static string? Optional(string value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

}
