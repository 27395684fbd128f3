using Grpc.Core;
using Hybrid.Protocol.Identity;

namespace Hybrid.Client.Connectivity;

/// <summary>
/// An identity's proof-of-work stamp (a network asks one of identities new to it): kept in memory
/// and in a file of the peer's home, minted only when missing or too weak for what is asked.
/// </summary>
/// <param name="identity">The identity the stamp is for.</param>
/// <param name="file">Where the stamp is kept across runs; null: memory only.</param>
public sealed class WorkStampStore(PeerIdentity identity, string? file)
{
    private volatile byte[]? _stamp;

    /// <summary>A stamp of at least <paramref name="bits"/> bits, from memory, the file, or minted now (and kept).</summary>
    /// <exception cref="InvalidOperationException"><paramref name="bits"/> is above what a client mints.</exception>
    public async Task<byte[]> GetAsync(int bits, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(identity);
        if (bits > WorkStamps.MaxBits)
        {
            throw new InvalidOperationException($"the supernode asks {bits} bits of work of a new identity; this client mints at most {WorkStamps.MaxBits}");
        }

        var known = _stamp;
        if (known is null && file is not null && File.Exists(file))
        {
            try
            {
                known = Convert.FromHexString((await File.ReadAllTextAsync(file, cancellationToken)).Trim());
            }
            catch (FormatException)
            {
                known = null;
            }
        }

        if (known is null || WorkStamps.Bits(identity.PublicKey, known) < bits)
        {
            known = await Task.Run(() => WorkStamps.Mint(identity.PublicKey, bits, cancellationToken), cancellationToken);
            if (file is not null)
            {
                await File.WriteAllTextAsync(file, Convert.ToHexString(known), cancellationToken);
            }
        }

        _stamp = known;
        return known;
    }

    /// <summary>
    /// Makes a signed write; when the network refuses it because this identity is new and brings no
    /// work, mints the stamp asked for and makes it once more with the stamp attached.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<Metadata, Task<T>> write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(write);
        try
        {
            return await write(new Metadata());
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.FailedPrecondition && int.TryParse(ex.Trailers.GetValue(WorkStamps.WorkBitsTrailer), out var bits) && bits is > 0 and <= WorkStamps.MaxBits)
        {
            var stamp = await GetAsync(bits, cancellationToken);
            return await write(new Metadata { { WorkStamps.WorkHeader, Convert.ToHexString(stamp) } });
        }
    }
}
