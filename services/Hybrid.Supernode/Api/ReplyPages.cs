using Google.Protobuf;
using Google.Protobuf.Collections;
using Hybrid.Supernode.Configuration;

namespace Hybrid.Supernode.Api;

/// <summary>
/// Cuts reply pages by bytes as well as by count, so no set of published records can make a reply
/// exceed the message limit. The first item always fits (every record kind is far below the budget).
/// </summary>
public sealed class ReplyPages(SupernodeOptions options)
{
    /// <summary>Bytes a page of records may take: the message limit less room for the page's own fields.</summary>
    public int Bytes => Math.Max(64 * 1024, options.MaxMessageBytes - (8 * 1024));

    /// <summary>Adds converted items while the page stays within <see cref="Bytes"/>; returns how many were added.</summary>
    public int Fill<TSource, TItem>(RepeatedField<TItem> into, IReadOnlyList<TSource> source, Func<TSource, TItem> convert)
        where TItem : IMessage
    {
        ArgumentNullException.ThrowIfNull(into);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(convert);
        var used = 0;
        foreach (var item in source)
        {
            var converted = convert(item);
            var size = converted.CalculateSize() + 8;
            if (into.Count > 0 && used + size > Bytes)
            {
                break;
            }

            into.Add(converted);
            used += size;
        }

        return into.Count;
    }
}
