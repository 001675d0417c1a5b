import Synchronization

/// One vCPU's exit counters, written by its thread on every exit and readable from any thread
/// while the machine runs (`apus ctl stats`).
///
/// Each counter is an `Atomic` with a single writer, so counting is a relaxed load and a
/// relaxed store — a plain `mov` pair on x86, no lock prefix and no lock on the exit path —
/// and a reader sees each counter whole, never torn. Readers may see one counter a few exits
/// ahead of another; totals are only ever a snapshot.
final class LiveExitCounters: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Atomic<Int>>
    private let pioDevices: Int
    private let mmioDevices: Int
    private static let kinds = ExitStatistics.Kind.allCases.count
    private var slotCount: Int { Self.kinds + pioDevices + mmioDevices }

    init(pioDevices: Int, mmioDevices: Int) {
        self.pioDevices = pioDevices
        self.mmioDevices = mmioDevices
        let n = Self.kinds + pioDevices + mmioDevices
        slots = .allocate(capacity: n)
        for i in 0..<n { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: slotCount)
        slots.deallocate()
    }

    /// Only the owning vCPU thread calls this (one writer: no read-modify-write needed).
    @inline(__always)
    private func bump(_ i: Int) {
        slots[i].store(slots[i].load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    @inline(__always) func count(_ kind: ExitStatistics.Kind) { bump(kind.rawValue) }
    @inline(__always) func countPIO(device index: Int) { bump(Self.kinds + index) }
    @inline(__always) func countMMIO(device index: Int) { bump(Self.kinds + pioDevices + index) }

    /// The counts as they are now.
    func snapshot() -> ExitStatistics {
        var s = ExitStatistics(pioDevices: pioDevices, mmioDevices: mmioDevices)
        for i in 0..<Self.kinds { s.byKind[i] = slots[i].load(ordering: .relaxed) }
        for i in 0..<pioDevices { s.byPIODevice[i] = slots[Self.kinds + i].load(ordering: .relaxed) }
        for i in 0..<mmioDevices { s.byMMIODevice[i] = slots[Self.kinds + pioDevices + i].load(ordering: .relaxed) }
        return s
    }
}
