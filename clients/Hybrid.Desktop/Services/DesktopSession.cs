using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.Client;
using Hybrid.Client.Daemon;
using Hybrid.Client.Connectivity;
using Hybrid.Protocol.Control;
using Hybrid.Protocol.Identity;

namespace Hybrid.Desktop.Services;

/// <summary>Everything the pages share: the user's home, identity, the daemon's control API and the supernodes.</summary>
public sealed class DesktopSession : IDisposable
{
    private readonly GrpcChannel _control;
    private readonly ConcurrentDictionary<string, DownloadState> _downloads = new(StringComparer.Ordinal);

    /// <summary>Creates the session for <paramref name="homePath"/>.</summary>
    public DesktopSession(string homePath, PeerIdentity identity, IReadOnlyList<string> supernodes, string displayName)
    {
        HomePath = homePath;
        Identity = identity;
        DisplayName = displayName;
        Supernodes = new SupernodeCaller(supernodes);
        _control = ControlChannel.Open(homePath);
        Control = ControlChannel.Client(_control);
    }

    /// <summary>The home directory.</summary>
    public string HomePath { get; }

    /// <summary>The user's key pair.</summary>
    public PeerIdentity Identity { get; }

    /// <summary>The user's display name.</summary>
    public string DisplayName { get; }

    /// <summary>The daemon's control API.</summary>
    public Control.ControlClient Control { get; }

    /// <summary>Calls that only need the index (search, listings, reviews).</summary>
    public SupernodeCaller Supernodes { get; }

    /// <summary>The downloads started from this app, by order id.</summary>
    public IReadOnlyDictionary<string, DownloadState> Downloads => _downloads;

    /// <summary>
    /// The path of a listing photo's full image, fetched from <paramref name="seller"/> the first
    /// time and kept under the home's photo cache; null when it cannot be had or does not decode
    /// within the limits (a crafted image is dropped, never shown).
    /// </summary>
    public async Task<string?> PhotoAsync(string contentId, string seller, CancellationToken cancellationToken)
    {
        if (!Hybrid.Protocol.Content.ContentManifests.IsContentId(contentId) || !Hybrid.Protocol.Identity.PeerId.TryParse(seller, out _, out _))
        {
            return null;
        }

        var folder = Directory.CreateDirectory(System.IO.Path.Combine(HomePath, "photo-cache")).FullName;
        var file = System.IO.Path.Combine(folder, contentId.Replace(':', '-') + ".jpg");
        if (System.IO.File.Exists(file))
        {
            return file;
        }

        var partial = file + ".partial";
        try
        {
            using var call = Control.Fetch(new FetchRequest { ContentId = contentId, FromPeer = seller, OutPath = partial }, cancellationToken: cancellationToken);
            await foreach (var progress in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                if (progress.TotalBytes > Hybrid.Client.Market.Photos.MaxFileBytes)
                {
                    // Bigger than any photo may be: not fetched further (disposing the call cancels it).
                    throw new Hybrid.Client.Market.PhotoRejectedException("larger than a photo may be");
                }
            }

            using (Hybrid.Client.Market.Photos.Decode(await System.IO.File.ReadAllBytesAsync(partial, cancellationToken)))
            {
            }

            System.IO.File.Move(partial, file, overwrite: true);
            return file;
        }
        catch (Exception ex) when (ex is RpcException or IOException or Hybrid.Client.Market.PhotoRejectedException)
        {
            System.IO.File.Delete(partial);
            return null;
        }
    }

    /// <summary>Starts downloading an order's goods in the background (once); progress shows in <see cref="Downloads"/>.</summary>
    public DownloadState StartDownload(string orderId)
    {
        var state = _downloads.GetOrAdd(orderId, id => new DownloadState(id));
        if (state.TryStart())
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    using var call = Control.Fetch(new FetchRequest { OrderId = orderId });
                    await foreach (var progress in call.ResponseStream.ReadAllAsync())
                    {
                        state.Update(progress);
                    }
                }
                catch (RpcException ex)
                {
                    state.Fail(Friendly.Message(ex));
                }
                finally
                {
                    state.Stop();
                }
            });
        }

        return state;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Supernodes.Dispose();
        _control.Dispose();
    }
}

/// <summary>One download's progress as the pages show it.</summary>
public sealed class DownloadState(string orderId)
{
    private int _running;

    /// <summary>The order.</summary>
    public string OrderId { get; } = orderId;

    /// <summary>Verified bytes on disk.</summary>
    public ulong Received { get; private set; }

    /// <summary>Size of the goods.</summary>
    public ulong Total { get; private set; }

    /// <summary>Direct or relayed.</summary>
    public string Path { get; private set; } = string.Empty;

    /// <summary>The finished file, once done.</summary>
    public string? File { get; private set; }

    /// <summary>Why it stopped, if it failed.</summary>
    public string? Error { get; private set; }

    /// <summary>Whether a fetch is under way.</summary>
    public bool Running => Volatile.Read(ref _running) == 1;

    /// <summary>Claims the download for a new fetch; false while one is under way.</summary>
    internal bool TryStart()
    {
        if (Interlocked.CompareExchange(ref _running, 1, 0) != 0)
        {
            return false;
        }

        Error = null;
        File = null;
        return true;
    }

    internal void Update(FetchProgress progress)
    {
        Received = progress.ReceivedBytes;
        Total = progress.TotalBytes;
        Path = progress.Path;
        if (progress.Done)
        {
            File = progress.File;
        }
    }

    internal void Fail(string message) => Error = message;

    internal void Stop() => Volatile.Write(ref _running, 0);
}
