using Hybrid.Protocol.Envelopes;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.Reputation;
using Hybrid.Protocol.V1;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// A supernode answered with something that does not verify: a key that is not the peer's, a
/// signature that does not check. Supernodes are trusted for availability only, so such an answer
/// is dropped and the next supernode asked.
/// </summary>
public sealed class ForgedAnswerException(string what) : Exception(what)
{
    /// <summary>The supernode that sent it, once known.</summary>
    public string? SupernodeUrl { get; init; }
}

/// <summary>What a client checks in a supernode's answers before it uses or shows them.</summary>
public static class SupernodeAnswers
{
    /// <summary>
    /// Checks a look-up of <paramref name="asked"/>: the answer is for that peer, its key hashes to
    /// the PeerId (so mail is sealed and links are pinned to the peer, not to whoever answered), and
    /// its profile is signed by that key. The display name is replaced by the one the peer signed;
    /// an expired profile is dropped, a forged one refuses the whole answer.
    /// </summary>
    /// <exception cref="ForgedAnswerException">The answer does not verify.</exception>
    public static PeerInfo CheckPeer(PeerId asked, PeerInfo info, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (info.PeerId != asked.ToString())
        {
            throw new ForgedAnswerException($"asked for {asked}, the answer is about '{Shorten(info.PeerId)}'");
        }

        if (!asked.Matches(info.PublicKey.Span))
        {
            throw new ForgedAnswerException($"the public key given for {asked} does not belong to it (its hash is another PeerId)");
        }

        var checkedInfo = info.Clone();
        checkedInfo.DisplayName = string.Empty;
        if (info.Profile is { } profile)
        {
            try
            {
                checkedInfo.DisplayName = SignedEnvelopes.Verify(profile, EnvelopeKinds.Profile, now, asked).Body(PeerProfile.Parser).DisplayName;
            }
            catch (EnvelopeRejectedException ex) when (ex.Fault is EnvelopeFault.Expired)
            {
                checkedInfo.Profile = null;
            }
            catch (EnvelopeRejectedException ex)
            {
                throw new ForgedAnswerException($"the profile given for {asked} does not verify: {ex.Message}");
            }
        }

        return checkedInfo;
    }

    /// <summary>
    /// Checks a listing record: its envelope is a listing signed by the seller the record names (a
    /// live one not expired), and what is shown is what the seller signed: the decoded fields and the
    /// version are replaced by the envelope's own.
    /// </summary>
    /// <exception cref="ForgedAnswerException">The record does not verify.</exception>
    public static ListingRecord CheckListing(ListingRecord record, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!PeerId.TryParse(record.Seller, out var seller, out _))
        {
            throw new ForgedAnswerException($"a listing record names no valid seller ('{Shorten(record.Seller)}')");
        }

        VerifiedEnvelope verified;
        try
        {
            // A withdrawn or expired listing is still shown as it was signed: check it as of its issue time.
            var asOf = record.State == ListingState.Active ? now : SignedEnvelopes.IssuedAt(record.Envelope);
            verified = SignedEnvelopes.Verify(record.Envelope, EnvelopeKinds.Listing, asOf, seller);
        }
        catch (EnvelopeRejectedException ex)
        {
            throw new ForgedAnswerException($"listing {Shorten(record.Listing?.ListingId ?? string.Empty)} does not verify: {ex.Message}");
        }

        var checkedRecord = record.Clone();
        checkedRecord.Listing = verified.Body(Listing.Parser);
        checkedRecord.Version = verified.Version;
        checkedRecord.ExpiresMs = verified.Payload.ExpiresAtMs;
        return checkedRecord;
    }

    /// <summary>The hits of a search that verify (<see cref="CheckListing"/>); <paramref name="dropped"/> counts the others.</summary>
    public static SearchResponse CheckSearch(SearchResponse response, DateTimeOffset now, out int dropped)
    {
        ArgumentNullException.ThrowIfNull(response);
        var kept = response.Clone();
        kept.Hits.Clear();
        kept.Hits.AddRange(Verifying(response.Hits, hit => new SearchHit { Record = CheckListing(hit.Record, now), Score = hit.Score }, out dropped));
        return kept;
    }

    /// <summary>The listings of a seller's page that verify; <paramref name="dropped"/> counts the others.</summary>
    public static ListingPage CheckPage(ListingPage page, DateTimeOffset now, out int dropped)
    {
        ArgumentNullException.ThrowIfNull(page);
        var kept = page.Clone();
        kept.Listings.Clear();
        kept.Listings.AddRange(Verifying(page.Listings, record => CheckListing(record, now), out dropped));
        return kept;
    }

    /// <summary>The items <paramref name="check"/> accepts (as it returns them); <paramref name="dropped"/> counts the rest.</summary>
    private static List<T> Verifying<T>(IEnumerable<T> items, Func<T, T> check, out int dropped)
    {
        var kept = new List<T>();
        dropped = 0;
        foreach (var item in items)
        {
            try
            {
                kept.Add(check(item));
            }
            catch (ForgedAnswerException)
            {
                dropped++;
            }
        }

        return kept;
    }

    /// <summary>
    /// Checks a page of reviews of <paramref name="reviewed"/>: each review verifies with its co-signed
    /// receipt, is about that peer and has the id the record gives; its reply, if any, is signed by the
    /// reviewed peer for that review; earlier versions are the same reviewer's. Shown fields (stars,
    /// text, aspects, reply text) are replaced by the signed ones.
    /// </summary>
    /// <exception cref="ForgedAnswerException">A record does not verify.</exception>
    public static ReviewPage CheckReviews(PeerId reviewed, ReviewPage page, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(page);
        var kept = page.Clone();
        kept.Reviews.Clear();
        foreach (var record in page.Reviews)
        {
            kept.Reviews.Add(CheckReview(reviewed, record, now));
        }

        return kept;
    }

    private static ReviewRecord CheckReview(PeerId reviewed, ReviewRecord record, DateTimeOffset now)
    {
        try
        {
            var review = Reviews.Verify(record.Envelope, now);
            if (!review.Reviewed.Equals(reviewed) || review.ReviewId != record.ReviewId || review.Reviewer.ToString() != record.Reviewer)
            {
                throw new ForgedAnswerException($"review {Shorten(record.ReviewId)} is not the review the record says it is");
            }

            var checkedRecord = record.Clone();
            checkedRecord.Stars = review.Body.Stars;
            checkedRecord.Text = review.Body.Text;
            checkedRecord.Version = review.Version;
            checkedRecord.Aspects.Clear();
            checkedRecord.Aspects.Add(review.Body.Aspects);
            checkedRecord.OrderOutcome = Reviews.Outcome(review.Receipt);
            foreach (var earlier in record.History)
            {
                var old = Reviews.Verify(earlier, now);
                if (old.ReviewId != review.ReviewId || !old.Reviewer.Equals(review.Reviewer))
                {
                    throw new ForgedAnswerException($"review {Shorten(record.ReviewId)} carries an earlier version of another review");
                }
            }

            checkedRecord.ReplyText = string.Empty;
            if (record.Reply is { } replyEnvelope)
            {
                var reply = Reviews.VerifyReply(replyEnvelope, now);
                if (reply.ReviewId != review.ReviewId || !reply.Author.Equals(reviewed))
                {
                    throw new ForgedAnswerException($"the reply shown with review {Shorten(record.ReviewId)} is not the reviewed peer's reply to it");
                }

                checkedRecord.ReplyText = reply.Text;
            }

            return checkedRecord;
        }
        catch (Exception ex) when (ex is EnvelopeRejectedException or ReviewRejectedException)
        {
            throw new ForgedAnswerException($"review {Shorten(record.ReviewId)} does not verify: {ex.Message}");
        }
    }

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
