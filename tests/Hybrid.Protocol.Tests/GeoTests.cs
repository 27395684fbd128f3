using Hybrid.Protocol.Listings;

namespace Hybrid.Protocol.Tests;

public sealed class GeoTests
{
    [Fact]
    public void AGeohashDecodesToTheCentreOfItsCell()
    {
        // The worked example of geohash's author: u4pruydqqvj is at 57.64911, 10.40744.
        var (latitude, longitude) = Geo.Centre("u4pruydqqvj")!.Value;

        Assert.Equal(57.64911, latitude, 4);
        Assert.Equal(10.40744, longitude, 4);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("u33dba")]
    [InlineData("u4pruydqqvjzz")]
    public void NoGeohashOrAMalformedOneHasNoCentre(string? geohash) => Assert.Null(Geo.Centre(geohash));

    [Fact]
    public void DistancesAreGreatCircleKilometres()
    {
        // Berlin to Paris, 877-878 km; a point to itself, 0; the poles, half the circumference.
        Assert.InRange(Geo.DistanceKm(52.5200, 13.4050, 48.8566, 2.3522), 877, 878);
        Assert.Equal(0, Geo.DistanceKm(10, 20, 10, 20), 6);
        Assert.Equal(Geo.MaxDistanceKm, Geo.DistanceKm(90, 0, -90, 0), 0);
    }

    [Theory]
    [InlineData(90.0001, 0)]
    [InlineData(0, -180.5)]
    [InlineData(double.NaN, 0)]
    [InlineData(0, double.PositiveInfinity)]
    public void PointsOffTheEarthAreNotPoints(double latitude, double longitude) => Assert.False(Geo.IsPoint(latitude, longitude));
}
