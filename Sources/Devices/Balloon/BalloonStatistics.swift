import ByteOrder

/// The guest's memory statistics as the driver reports them on the stats queue (virtio 1.2
/// §5.5.6.3): packed `{ le16 tag; le64 val }` entries, 10 bytes each.
public enum BalloonStatistics {
    /// Tags: 0 SWAP_IN, 1 SWAP_OUT, 2 MAJFLT, 3 MINFLT, 4 MEMFREE, 5 MEMTOT, 6 AVAIL, 7 CACHES,
    /// 8 HTLB_PGALLOC, 9 HTLB_PGFAIL, and from Linux 6.12 10 OOM_KILL, 11 ALLOC_STALL,
    /// 12 ASYNC_SCAN, 13 DIRECT_SCAN, 14 ASYNC_RECLAIM, 15 DIRECT_RECLAIM. Others are ignored.
    public static let knownTags: Range<UInt16> = 0..<16
    public static let memFree: UInt16 = 4, memTotal: UInt16 = 5, available: UInt16 = 6
    public static let entrySize = 10
    /// The most entries read from one buffer: a buffer is the guest's to size, and Linux sends
    /// one entry per known tag.
    public static let maxEntries = 64
    public static let maxBytes = maxEntries * entrySize

    /// The entries of `bytes` (a trailing partial entry is ignored; a repeated tag keeps its
    /// last value).
    public static func parse(_ bytes: [UInt8]) -> [UInt16: UInt64] {
        var stats: [UInt16: UInt64] = [:]
        let count = min(bytes.count / entrySize, maxEntries)
        for i in 0..<count {
            let at = i * entrySize
            guard let tag = bytes.loadLittleEndian(UInt16.self, at: at),
                  let value = bytes.loadLittleEndian(UInt64.self, at: at + 2),
                  knownTags.contains(tag) else { continue }
            stats[tag] = value
        }
        return stats
    }
}
