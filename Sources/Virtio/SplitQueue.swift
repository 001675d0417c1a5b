import GuestMemory
import Synchronization

/// One buffer of a descriptor chain, already validated against guest RAM.
public struct Descriptor: Equatable, Sendable {
    public let address: GuestAddress
    public let length: UInt32
    /// Device-writable (the driver set VIRTQ_DESC_F_WRITE).
    public let isWritable: Bool
}

/// The device side of a split virtqueue (virtio 1.2 §2.7): takes chains the driver made
/// available and returns them as used.
///
/// Every value read from guest memory is checked: ring addresses and sizes once at creation,
/// indices and descriptors on every use. Index reads and writes are ordered as the spec asks:
/// `avail.idx` is read before the ring entries it covers (acquire), used entries are written
/// before `used.idx` (release), and a full fence separates publishing `used.idx` from reading
/// the driver's interrupt suppression.
///
/// Owned by one thread at a time (the device's I/O thread once the device is live).
public final class SplitQueue: @unchecked Sendable {
    static let descriptorSize: UInt64 = 16
    static let flagNext: UInt16 = 1
    static let flagWrite: UInt16 = 2
    static let flagIndirect: UInt16 = 4
    static let availNoInterrupt: UInt16 = 1
    /// The largest queue size the spec allows.
    public static let maximumSize: UInt16 = 32768

    public let memory: GuestMemory
    public let size: UInt16
    public let descriptorTable: GuestAddress
    public let availRing: GuestAddress
    public let usedRing: GuestAddress
    let eventIndex: Bool
    /// The next available-ring slot the device will look at.
    public private(set) var nextAvail: UInt16 = 0
    /// The next used-ring slot the device will fill.
    public private(set) var nextUsed: UInt16 = 0
    /// `nextUsed` when the driver was last interrupted (for EVENT_IDX).
    private var signalledUsed: UInt16 = 0
    /// Set once the driver broke the ring's rules: the device has asked for a reset, and until
    /// it gets one (which builds a new queue) notifies are ignored instead of failing, and being
    /// logged, again and again.
    public private(set) var isBroken = false

    /// Records that the driver broke the rules (for devices with their own loop; see
    /// `serveAvailable`).
    public func markBroken() { isBroken = true }

    /// Validates the layout the driver configured: size a power of two ≤ `maxSize`, each area
    /// aligned (16/2/4) and entirely in RAM.
    public init(memory: GuestMemory, size: UInt16, maxSize: UInt16, descriptorTable: GuestAddress,
                availRing: GuestAddress, usedRing: GuestAddress, eventIndex: Bool) throws(QueueError) {
        guard size > 0, size <= maxSize, size <= Self.maximumSize, size & (size - 1) == 0 else {
            throw .invalidSize(size, max: maxSize)
        }
        let n = UInt64(size)
        let extra: UInt64 = eventIndex ? 2 : 0
        for (name, address, alignment, length) in [
            ("descriptor table", descriptorTable, UInt64(16), 16 * n),
            ("available ring", availRing, 2, 4 + 2 * n + extra),
            ("used ring", usedRing, 4, 4 + 8 * n + extra),
        ] {
            guard address.rawValue % alignment == 0 else { throw .misaligned(area: name, address: address.rawValue) }
            guard memory.contains(address, length: length) else {
                throw .areaOutsideRAM(area: name, address: address.rawValue, length: length)
            }
        }
        self.memory = memory
        self.size = size
        self.descriptorTable = descriptorTable
        self.availRing = availRing
        self.usedRing = usedRing
        self.eventIndex = eventIndex
    }

    // The areas were checked at init, so these offsets are always in RAM.
    private func load16(_ base: GuestAddress, _ offset: UInt64) -> UInt16 {
        (try? memory.load(UInt16.self, at: GuestAddress(base.rawValue + offset))) ?? 0
    }
    private func store16(_ value: UInt16, _ base: GuestAddress, _ offset: UInt64) {
        try? memory.store(value, at: GuestAddress(base.rawValue + offset))
    }

    /// Takes the next available chain, or nil when the driver has made none available.
    public func popAvailable() throws(QueueError) -> DescriptorChain? {
        let availIdx = load16(availRing, 2)
        // Read ring entries only after seeing the index that publishes them.
        atomicMemoryFence(ordering: .acquiring)
        guard availIdx != nextAvail else { return nil }
        // More than `size` outstanding entries is a broken (or hostile) driver.
        guard availIdx &- nextAvail <= size else {
            throw .availIndexTooFar(availIdx: availIdx, lastSeen: nextAvail, size: size)
        }
        let head = load16(availRing, 4 + 2 * UInt64(nextAvail % size))
        nextAvail &+= 1
        if eventIndex { store16(nextAvail, usedRing, 4 + 8 * UInt64(size)) }  // avail_event
        return try DescriptorChain(queue: self, head: head)
    }

    /// Puts back the last `count` chains taken with `popAvailable`, unused: the next pops take
    /// them again. (virtio-net's receive path takes chains for a frame before it knows they
    /// are enough; when they are not, the frame waits for more.) avail_event stays where the
    /// pops left it: the device wants to hear of buffers beyond those, not of these again —
    /// moving it back would even silence the driver's next notify (vring_need_event).
    public func unpop(_ count: UInt16) {
        precondition(count <= nextAvail &- nextUsed, "unpop of chains never popped")
        nextAvail &-= count
    }

    /// Whether the driver has made chains available that the device has not taken. With
    /// EVENT_IDX it first asks to be notified of the next one (avail_event), so a chain added
    /// between this check and the device going to sleep still rings the doorbell.
    public func hasAvailable() -> Bool {
        if eventIndex { store16(nextAvail, usedRing, 4 + 8 * UInt64(size)) }
        // avail_event must be visible before we read avail.idx (the driver does the mirror image).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return load16(availRing, 2) != nextAvail
    }

    /// Returns chain `head` to the driver with `written` bytes written into it.
    public func addUsed(head: UInt16, written: UInt32) {
        let slot = GuestAddress(usedRing.rawValue + 4 + 8 * UInt64(nextUsed % size))
        try? memory.store(UInt32(head), at: slot)
        try? memory.store(written, at: GuestAddress(slot.rawValue + 4))
        nextUsed &+= 1
        // The element must be visible before the index that publishes it.
        atomicMemoryFence(ordering: .releasing)
        store16(nextUsed, usedRing, 2)
    }

    /// Whether the driver wants an interrupt for the used entries added since the last one.
    public func needsInterrupt() -> Bool {
        // used.idx must be visible before we read the driver's suppression state.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        defer { signalledUsed = nextUsed }
        if eventIndex {
            let usedEvent = load16(availRing, 4 + 2 * UInt64(size))
            // vring_need_event: interrupt iff used_event lies in [old, new).
            return nextUsed &- usedEvent &- 1 < nextUsed &- signalledUsed
        }
        return load16(availRing, 0) & Self.availNoInterrupt == 0
    }

    /// Reads descriptor `index` of the table at `table` (which has `count` entries).
    func descriptor(table: GuestAddress, count: UInt32, index: UInt16) throws(QueueError) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        guard UInt32(index) < count else { throw .nextOutOfRange(index) }
        let at = table.rawValue + Self.descriptorSize * UInt64(index)
        do {
            let addr = try memory.load(UInt64.self, at: GuestAddress(at))
            let len = try memory.load(UInt32.self, at: GuestAddress(at + 8))
            let flags = try memory.load(UInt16.self, at: GuestAddress(at + 12))
            let next = try memory.load(UInt16.self, at: GuestAddress(at + 14))
            return (addr, len, flags, next)
        } catch {
            throw .areaOutsideRAM(area: "descriptor table", address: at, length: Self.descriptorSize)
        }
    }
}

extension SplitQueue {
    /// The canonical device loop: takes available chains, lets `handle` serve each (it returns
    /// the bytes it wrote into the chain), returns each as used, and interrupts the driver once
    /// at the end if it asked for it. A chain that breaks the rules stops the run and asks the
    /// driver to reset the device (`deviceNeedsReset`), after `log`ging why, once: the queue is
    /// then broken and later runs do nothing.
    ///
    /// At most `budget` chains (default: one ring's worth) per call: a driver that refills the
    /// ring from another vCPU as fast as the device empties it would otherwise keep this I/O
    /// thread here for good. With work left, the transport is asked to `serveAgain`.
    public func serveAvailable(queue index: Int, interrupt: any VirtioInterrupt, log: (QueueError) -> Void,
                               budget: Int? = nil, _ handle: (inout DescriptorChain) -> UInt32) {
        guard !isBroken else { return }
        let budget = budget ?? Int(size)
        var served = 0
        do throws(QueueError) {
            while served < budget, var chain = try popAvailable() {
                let written = handle(&chain)
                if let error = chain.error { throw error }
                addUsed(head: chain.head, written: written)
                served += 1
            }
        } catch {
            markBroken()
            log(error)
            interrupt.deviceNeedsReset()
            return
        }
        if served > 0 && needsInterrupt() { interrupt.signalUsedBuffers(queue: index) }
        if served == budget { interrupt.serveAgain(queue: index) }
    }
}
