using Hybrid.Protocol.Identity;
using Hybrid.Protocol.V1;
using Hybrid.Testing;

namespace Hybrid.Supernode.Tests;

/// <summary>
/// A supernode's search forgives typos and knows synonyms, and an operator's synonym file extends
/// the shipped list (a file that does not exist is a configuration error: ConfigurationTests).
/// </summary>
public sealed class SearchSynonymsTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly PeerIdentity _seller = PeerIdentity.Generate();

    public void Dispose()
    {
        _seller.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task AnOperatorsSynonymFileExtendsTheShippedListAndTyposAreForgiven()
    {
        var file = _temp.Sub("synonyms.txt");
        await File.WriteAllLinesAsync(file, ["# shop words of this community", "lamp, luminaire", ""]);
        await using var node = await SupernodeProcess.StartAsync(_temp.Sub("sn"), $"--Supernode:SynonymsFile={file}");
        var client = node.Client;
        var luminaire = ListingFactory.Listing("Brass luminaire, 1970s", "Works, new cable");
        var bicycle = ListingFactory.Listing("Folding bicycle", "Fits in a car boot");
        await client.Listings.PublishListingAsync(ListingFactory.Sign(_seller, luminaire));
        await client.Listings.PublishListingAsync(ListingFactory.Sign(_seller, bicycle));

        async Task<List<string>> Search(string text) =>
            [.. (await client.Listings.SearchAsync(new SearchRequest { Text = text, Limit = 10 })).Hits.Select(h => h.Record.Listing.ListingId)];

        Assert.Equal([luminaire.ListingId], await Search("lamp"));
        Assert.Equal([bicycle.ListingId], await Search("bike"));
        Assert.Equal([bicycle.ListingId], await Search("foldng bike"));
    }
}
