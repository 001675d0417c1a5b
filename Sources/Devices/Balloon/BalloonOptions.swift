/// How a memory balloon is set up (`--balloon`).
public struct BalloonOptions: Sendable, Equatable {
    /// Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest may take pages back from the balloon
    /// when it runs out of memory (and then counts ballooned pages in its MemTotal).
    public var deflateOnOOM = false
    /// Offer VIRTIO_BALLOON_F_REPORTING: the guest hands free memory back on its own.
    public var freePageReporting = false
    /// Ask the guest for fresh statistics this often (seconds); nil: only when asked.
    public var statisticsInterval: Int?
    /// The balloon's size at boot, in bytes (the driver inflates to it as soon as it loads).
    public var initialTarget: UInt64 = 0

    public init(deflateOnOOM: Bool = false, freePageReporting: Bool = false, statisticsInterval: Int? = nil,
                initialTarget: UInt64 = 0) {
        self.deflateOnOOM = deflateOnOOM
        self.freePageReporting = freePageReporting
        self.statisticsInterval = statisticsInterval
        self.initialTarget = initialTarget
    }
}

/// What the balloon has done since the machine started, for `--stats` and tests.
public struct BalloonCounters: Sendable, Equatable {
    /// Valid PFNs the driver put in the balloon (4 KiB pages).
    public var inflatedPages = 0
    /// Valid PFNs the driver took back out.
    public var deflatedPages = 0
    /// PFNs of inflate or deflate buffers that did not name a page of RAM.
    public var droppedPages = 0
    /// Bytes given back to the host with MADV_DONTNEED (inflate and free page reporting).
    public var discardedBytes: UInt64 = 0
    /// Bytes of free memory the driver reported.
    public var reportedBytes: UInt64 = 0
    /// Device resets by the driver.
    public var resets = 0
    public init() {}
}
