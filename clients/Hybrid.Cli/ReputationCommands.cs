using System.CommandLine;
using System.Globalization;
using Hybrid.Client.Market;
using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Spectre.Console;

namespace Hybrid.Cli;

/// <summary>Reviews of completed orders, replies, and a peer's reputation.</summary>
internal static class ReputationCommands
{
    public static Command Review()
    {
        var orderId = new Argument<string>("order-id") { Description = "A completed order of yours (as buyer or seller)." };
        var stars = new Option<uint>("--stars") { Description = "1 to 5.", Required = true };
        var text = new Option<string>("--text") { Description = "What happened.", DefaultValueFactory = _ => string.Empty };
        var aspects = new Option<string[]>("--aspect") { Description = "NAME=SCORE (1-5), e.g. communication=5 (repeatable).", DefaultValueFactory = _ => [] };
        var verdict = new Option<string?>("--verdict") { Description = "For an order its mediator decided: accept or reject (the mediator's record counts it)." };
        verdict.AcceptOnlyFromAmong("accept", "reject");
        var review = new Command("review", "Review the other party of a finished order (completed, or decided by its mediator); the signed receipt goes with it. Again later: amends your review.") { orderId, stars, text, aspects, verdict };
        review.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            var id = parse.GetValue(orderId)!;
            var scores = new Dictionary<string, uint>(StringComparer.Ordinal);
            foreach (var aspect in parse.GetValue(aspects)!)
            {
                var parts = aspect.Split('=', 2);
                if (parts.Length != 2 || !uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var score))
                {
                    throw new CliException(ExitCodes.Usage, $"'{aspect}' is not NAME=SCORE, e.g. communication=5");
                }

                scores[parts[0]] = score;
            }

            SignedEnvelope envelope;
            string reviewed;
            try
            {
                var accepts = parse.GetValue(verdict) switch { "accept" => true, "reject" => false, _ => (bool?)null };
                (envelope, reviewed) = MarketActions.SignReview(identity, context.Home.Path, id, parse.GetValue(stars), parse.GetValue(text)!, scores, DateTimeOffset.UtcNow, accepts);
            }
            catch (KeyNotFoundException ex)
            {
                throw new CliException(ExitCodes.NotFound, ex.Message);
            }
            catch (InvalidOperationException ex)
            {
                throw new CliException(ExitCodes.Refused, ex.Message);
            }

            using var caller = context.Caller();
            var stored = await context.WorkStamps(identity).WriteAsync(headers => caller.CallAsync((c, o) => c.Reputation.SubmitReviewAsync(envelope, o.WithHeaders(headers)).ResponseAsync, cancellationToken), cancellationToken);
            context.Write(new { reviewId = stored.ReviewId, version = stored.Version, reviewed, stars = parse.GetValue(stars) }, () => Console.WriteLine(stored.ReviewId));
            return ExitCodes.Ok;
        }));

        var reviewId = new Argument<string>("review-id");
        var replyText = new Argument<string>("text");
        var reply = new Command("reply", "Answer a review of you; your reply is shown beside it.") { reviewId, replyText };
        reply.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            using var identity = context.Home.LoadIdentity();
            var now = DateTimeOffset.UtcNow;
            var envelope = Hybrid.Protocol.Reputation.Reviews.SignReply(identity, parse.GetValue(reviewId)!, parse.GetValue(replyText)!, (ulong)now.ToUnixTimeMilliseconds(), now);
            using var caller = context.Caller();
            var stored = await context.WorkStamps(identity).WriteAsync(headers => caller.CallAsync((c, o) => c.Reputation.ReplyToReviewAsync(envelope, o.WithHeaders(headers)).ResponseAsync, cancellationToken), cancellationToken);
            context.Write(new { reviewId = stored.ReviewId, version = stored.Version }, () => Console.WriteLine($"replied to {stored.ReviewId}"));
            return ExitCodes.Ok;
        }));
        review.Subcommands.Add(reply);
        return review;
    }

    public static Command Reputation()
    {
        var peer = new Argument<string>("peer-id");
        var limit = new Option<int>("--limit") { Description = "Reviews to show (newest first).", DefaultValueFactory = _ => 10 };
        var command = new Command("reputation", "A peer's reputation: reviews received, averages, global trust, and the newest reviews with replies.") { peer, limit };
        command.SetAction((parse, cancellationToken) => CliContext.GuardAsync(async () =>
        {
            var context = new CliContext(parse);
            if (!PeerId.TryParse(parse.GetValue(peer), out var id, out var error))
            {
                throw new CliException(ExitCodes.Usage, error);
            }

            using var caller = context.Caller();
            var reputation = await caller.CallAsync((c, o) => c.Reputation.GetReputationAsync(new GetReputationRequest { PeerId = id.ToString() }, o).ResponseAsync, cancellationToken);
            var reviews = await caller.ListReviewsAsync(id, parse.GetValue(limit), cancellationToken: cancellationToken);
            var computed = reputation.TrustComputedMs == 0 ? (DateTimeOffset?)null : DateTimeOffset.FromUnixTimeMilliseconds(reputation.TrustComputedMs);
            context.Write(
                new
                {
                    peerId = reputation.PeerId,
                    count = reputation.Count,
                    average = reputation.Average,
                    bayesian = reputation.Bayesian,
                    recentAverage = reputation.RecentAverage,
                    trend = reputation.Trend,
                    trust = reputation.Trust,
                    trustScore = reputation.TrustScore,
                    trustComputed = computed,
                    trustPeers = reputation.TrustPeers,
                    mediator = reputation.Mediator is { Verdicts: > 0 } m
                        ? new { verdicts = m.Verdicts, acceptedByBoth = m.AcceptedByBoth, rejected = m.Rejected, forBuyer = m.ForBuyer, forSeller = m.ForSeller, splits = m.Splits }
                        : null,
                    reviews = reviews.Reviews.Select(r => new
                    {
                        reviewId = r.ReviewId,
                        reviewer = r.Reviewer,
                        orderId = r.OrderId,
                        stars = r.Stars,
                        text = r.Text,
                        aspects = r.Aspects,
                        version = r.Version,
                        amended = r.History.Count > 0,
                        created = DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedMs),
                        reply = string.IsNullOrEmpty(r.ReplyText) ? null : r.ReplyText,
                        orderOutcome = r.OrderOutcome,
                    }),
                },
                () =>
                {
                    Console.WriteLine($"{reputation.PeerId}: {reputation.Count} reviews, average {reputation.Average:0.00} (Bayesian {reputation.Bayesian:0.00}, last 90 days {reputation.RecentAverage:0.00}), trust score {reputation.TrustScore}/100{(computed is { } at ? $" as of {at:u}" : string.Empty)}");
                    if (reputation.Mediator is { Verdicts: > 0 } record)
                    {
                        Console.WriteLine($"as a mediator: {record.Verdicts} verdicts ({record.ForBuyer} for the buyer, {record.ForSeller} for the seller, {record.Splits} split), accepted by both sides {record.AcceptedByBoth}, rejected by a side {record.Rejected}");
                    }

                    var table = new Table().AddColumns("stars", "review", "order", "reply", "by");
                    foreach (var r in reviews.Reviews)
                    {
                        table.AddRow(new string('*', (int)r.Stars), Markup.Escape(r.Text), Markup.Escape(r.OrderOutcome), Markup.Escape(r.ReplyText), Markup.Escape(r.Reviewer[..15] + "…"));
                    }

                    AnsiConsole.Write(table);
                });
            return ExitCodes.Ok;
        }));
        return command;
    }
}
