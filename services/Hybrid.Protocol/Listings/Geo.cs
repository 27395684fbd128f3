namespace Hybrid.Protocol.Listings;

/// <summary>Positions on the earth for "within N km" and "nearest first": geohash centres and great-circle distances.</summary>
public static class Geo
{
    private const string Alphabet = "0123456789bcdefghjkmnpqrstuvwxyz";
    private const double EarthRadiusKm = 6371.0088;

    /// <summary>Half a great circle: no two points are farther apart (on the sphere distances are measured on).</summary>
    public const double MaxDistanceKm = Math.PI * EarthRadiusKm;

    /// <summary>The centre of a geohash's cell (latitude, longitude in degrees); null for an empty or malformed geohash.</summary>
    public static (double Latitude, double Longitude)? Centre(string? geohash)
    {
        if (string.IsNullOrEmpty(geohash) || geohash.Length > 12)
        {
            return null;
        }

        double latMin = -90, latMax = 90, lonMin = -180, lonMax = 180;
        var even = true;
        foreach (var c in geohash)
        {
            var value = Alphabet.IndexOf(c, StringComparison.Ordinal);
            if (value < 0)
            {
                return null;
            }

            for (var bit = 4; bit >= 0; bit--)
            {
                var on = ((value >> bit) & 1) == 1;
                if (even)
                {
                    var mid = (lonMin + lonMax) / 2;
                    (lonMin, lonMax) = on ? (mid, lonMax) : (lonMin, mid);
                }
                else
                {
                    var mid = (latMin + latMax) / 2;
                    (latMin, latMax) = on ? (mid, latMax) : (latMin, mid);
                }

                even = !even;
            }
        }

        return ((latMin + latMax) / 2, (lonMin + lonMax) / 2);
    }

    /// <summary>A point as people write it: "52.52,13.40" (latitude, longitude) or a geohash ("u33db", its centre).</summary>
    public static bool TryParsePoint(string? text, out double latitude, out double longitude)
    {
        (latitude, longitude) = (0, 0);
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length == 2
            && double.TryParse(parts[0], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out latitude)
            && double.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out longitude))
        {
            return IsPoint(latitude, longitude);
        }

        if (Centre(text.Trim().ToLowerInvariant()) is var (lat, lon))
        {
            (latitude, longitude) = (lat, lon);
            return true;
        }

        (latitude, longitude) = (0, 0);
        return false;
    }

    /// <summary>Whether a latitude and longitude are a point on the earth.</summary>
    public static bool IsPoint(double latitude, double longitude) =>
        double.IsFinite(latitude) && double.IsFinite(longitude) && latitude is >= -90 and <= 90 && longitude is >= -180 and <= 180;

    /// <summary>Great-circle distance in kilometres (haversine, mean earth radius).</summary>
    public static double DistanceKm(double latitude1, double longitude1, double latitude2, double longitude2)
    {
        var dLat = DegreesToRadians(latitude2 - latitude1);
        var dLon = DegreesToRadians(longitude2 - longitude1);
        var a = (Math.Sin(dLat / 2) * Math.Sin(dLat / 2)) + (Math.Cos(DegreesToRadians(latitude1)) * Math.Cos(DegreesToRadians(latitude2)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2));
        return 2 * EarthRadiusKm * Math.Asin(Math.Min(1, Math.Sqrt(a)));
    }

    /// <summary>Kilometres from a point to the centre of a location's geohash; null for a location without one.</summary>
    public static double? DistanceKm(double latitude, double longitude, V1.Location? location) =>
        Centre(location?.Geohash) is var (toLatitude, toLongitude) ? DistanceKm(latitude, longitude, toLatitude, toLongitude) : null;

    private static double DegreesToRadians(double degrees) => degrees * Math.PI / 180;
}
