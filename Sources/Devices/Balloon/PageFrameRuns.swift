import GuestMemory

/// Turns the page frame numbers of a balloon buffer into runs of contiguous guest pages that
/// lie in RAM.
///
/// A balloon PFN is a 32-bit number of a 4 KiB page (VIRTIO_BALLOON_PFN_SHIFT 12), whatever
/// the guest's own page size. Every PFN comes from the guest, so each is checked: a page that is
/// not entirely inside one RAM region (beyond the end of RAM, in the MMIO hole, or the partial
/// page at the end of a region) is dropped and counted. Neighbouring PFNs, ascending or
/// descending (Linux hands its pages over in either order), merge into one run, so a whole
/// buffer usually costs one `madvise`; a run never spans two regions, which are separate host
/// mappings. A repeated PFN just starts a new run: giving a page back twice is harmless.
public struct PageFrameRuns {
    public static let pageShift: UInt64 = 12
    public static let pageSize: UInt64 = 1 << pageShift

    private let memory: GuestMemory
    private let emit: (GuestAddress, UInt64) -> Void
    private var first: UInt64 = 0
    private var count: UInt64 = 0
    /// PFNs that named a page in RAM.
    public private(set) var accepted = 0
    /// PFNs that did not.
    public private(set) var dropped = 0
    /// The first dropped PFN, for the log.
    public private(set) var firstDropped: UInt32?

    /// - Parameter emit: receives each run (guest address, length in bytes) once it is complete.
    public init(memory: GuestMemory, emit: @escaping (GuestAddress, UInt64) -> Void) {
        self.memory = memory
        self.emit = emit
    }

    public mutating func add(_ pfn: UInt32) {
        let page = UInt64(pfn)
        guard memory.contains(GuestAddress(page << Self.pageShift), length: Self.pageSize) else {
            dropped += 1
            if firstDropped == nil { firstDropped = pfn }
            return
        }
        accepted += 1
        if count > 0 {
            if page == first + count, sameRegion(first, count + 1) { count += 1; return }
            if page + 1 == first, sameRegion(page, count + 1) { first = page; count += 1; return }
            finish()
        }
        first = page
        count = 1
    }

    /// Emits the run in progress. Call after the last PFN.
    public mutating func finish() {
        guard count > 0 else { return }
        emit(GuestAddress(first << Self.pageShift), count << Self.pageShift)
        count = 0
    }

    private func sameRegion(_ page: UInt64, _ pages: UInt64) -> Bool {
        memory.contains(GuestAddress(page << Self.pageShift), length: pages << Self.pageShift)
    }
}
