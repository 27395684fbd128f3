using System.Diagnostics;

namespace Hybrid.Testing;

/// <summary>Polls a condition until a deadline; on timeout says what was awaited and the last thing seen.</summary>
public static class Eventually
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    public static async Task<T> ReturnsAsync<T>(Func<Task<T>> probe, Func<T, bool> accept, TimeSpan timeout, string awaited)
    {
        var clock = Stopwatch.StartNew();
        string last = "nothing yet";
        while (true)
        {
            try
            {
                var value = await probe();
                if (accept(value))
                {
                    return value;
                }

                last = $"got {value}";
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                last = $"{ex.GetType().Name}: {ex.Message}";
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0.#} s waiting for {awaited}; last: {last}");
            }

            await Task.Delay(Interval);
        }
    }

    public static Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string awaited) =>
        ReturnsAsync(condition, ok => ok, timeout, awaited);
}
