import GuestMemory
import Testing
import Virtio

/// The driver's side of a split virtqueue, written straight into guest memory, so tests can
/// build honest and malicious rings alike.
struct DriverQueue {
    let memory: GuestMemory
    let size: UInt16
    let desc: GuestAddress
    let avail: GuestAddress
    let used: GuestAddress
    var availIdx: UInt16 = 0

    /// The rings at `base` + 0x1000 (descriptors), 0x3000 (available), 0x4000 (used).
    init(memory: GuestMemory, size: UInt16 = 8, base: UInt64 = 0) {
        self.memory = memory
        self.size = size
        desc = GuestAddress(base + 0x1000)
        avail = GuestAddress(base + 0x3000)
        used = GuestAddress(base + 0x4000)
    }

    func setDescriptor(_ i: UInt16, addr: UInt64, len: UInt32, flags: UInt16 = 0, next: UInt16 = 0, table: UInt64? = nil) throws {
        let at = (table ?? desc.rawValue) + 16 * UInt64(i)
        try memory.store(addr, at: GuestAddress(at))
        try memory.store(len, at: GuestAddress(at + 8))
        try memory.store(flags, at: GuestAddress(at + 12))
        try memory.store(next, at: GuestAddress(at + 14))
    }

    mutating func makeAvailable(_ head: UInt16) throws {
        try memory.store(head, at: GuestAddress(avail.rawValue + 4 + 2 * UInt64(availIdx % size)))
        availIdx &+= 1
        try memory.store(availIdx, at: GuestAddress(avail.rawValue + 2))
    }

    func deviceQueue(eventIndex: Bool = false) throws -> SplitQueue {
        try SplitQueue(memory: memory, size: size, maxSize: 256, descriptorTable: desc,
                       availRing: avail, usedRing: used, eventIndex: eventIndex)
    }

    func usedIdx() throws -> UInt16 { try memory.load(UInt16.self, at: GuestAddress(used.rawValue + 2)) }
    func usedElement(_ i: UInt16) throws -> (id: UInt32, len: UInt32) {
        let at = used.rawValue + 4 + 8 * UInt64(i)
        return (try memory.load(UInt32.self, at: GuestAddress(at)), try memory.load(UInt32.self, at: GuestAddress(at + 4)))
    }
}

@Suite struct SplitQueueTests {
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x10_0000)])

    @Test func walksAChainAndPublishesItAsUsed() throws {
        var driver = DriverQueue(memory: memory)
        try driver.setDescriptor(0, addr: 0x8000, len: 16, flags: 1, next: 3)
        try driver.setDescriptor(3, addr: 0x9000, len: 512, flags: 1 | 2, next: 5)
        try driver.setDescriptor(5, addr: 0xA000, len: 1, flags: 2)
        try driver.makeAvailable(0)
        let q = try driver.deviceQueue()
        var chain = try #require(try q.popAvailable())
        let ds = try chain.collect()
        #expect(ds.map(\.length) == [16, 512, 1])
        #expect(ds.map(\.isWritable) == [false, true, true])
        #expect(try q.popAvailable() == nil)
        q.addUsed(head: chain.head, written: 513)
        #expect(try driver.usedIdx() == 1)
        #expect(try driver.usedElement(0) == (0, 513))
    }

    @Test func refusesBadLayouts() {
        #expect(throws: QueueError.invalidSize(6, max: 256)) {
            try SplitQueue(memory: memory, size: 6, maxSize: 256, descriptorTable: GuestAddress(0x1000),
                           availRing: GuestAddress(0x3000), usedRing: GuestAddress(0x4000), eventIndex: false)
        }
        #expect(throws: QueueError.self) {
            try SplitQueue(memory: memory, size: 8, maxSize: 256, descriptorTable: GuestAddress(0x1008),
                           availRing: GuestAddress(0x3000), usedRing: GuestAddress(0x4000), eventIndex: false)
        }
        #expect(throws: QueueError.self) {
            try SplitQueue(memory: memory, size: 8, maxSize: 256, descriptorTable: GuestAddress(0x1000),
                           availRing: GuestAddress(0x3000), usedRing: GuestAddress(0xFFFF8), eventIndex: false)
        }
    }

    @Test func aDescriptorLoopEndsInAnError() throws {
        var driver = DriverQueue(memory: memory)
        try driver.setDescriptor(0, addr: 0x8000, len: 4, flags: 1, next: 1)
        try driver.setDescriptor(1, addr: 0x8000, len: 4, flags: 1, next: 0)
        try driver.makeAvailable(0)
        var chain = try #require(try driver.deviceQueue().popAvailable())
        #expect(throws: QueueError.chainTooLong(limit: 8)) { try chain.collect() }
    }

    @Test func buffersOutsideRAMAndIndicesOutsideTheTableAreRefused() throws {
        var driver = DriverQueue(memory: memory)
        try driver.setDescriptor(0, addr: 0xFFFF0, len: 0x20)
        try driver.setDescriptor(1, addr: 0x8000, len: 4, flags: 1, next: 200)
        try driver.setDescriptor(2, addr: UInt64.max - 2, len: 8)
        try driver.makeAvailable(0)
        try driver.makeAvailable(1)
        try driver.makeAvailable(2)
        try driver.makeAvailable(9)   // head outside the table
        let q = try driver.deviceQueue()
        var c0 = try #require(try q.popAvailable())
        #expect(throws: QueueError.bufferOutsideRAM(address: 0xFFFF0, length: 0x20)) { try c0.collect() }
        var c1 = try #require(try q.popAvailable())
        #expect(throws: QueueError.nextOutOfRange(200)) { try c1.collect() }
        var c2 = try #require(try q.popAvailable())
        #expect(throws: QueueError.self) { try c2.collect() }
        #expect(throws: QueueError.headOutOfRange(9)) { try q.popAvailable() }
    }

    @Test func anAvailIndexTooFarAheadIsRefused() throws {
        let driver = DriverQueue(memory: memory)
        try memory.store(UInt16(9), at: GuestAddress(driver.avail.rawValue + 2))
        #expect(throws: QueueError.availIndexTooFar(availIdx: 9, lastSeen: 0, size: 8)) {
            try driver.deviceQueue().popAvailable()
        }
    }

    /// A broken ring is reported once: the guest can notify as often as it likes, the device
    /// neither retries nor logs until it is reset.
    @Test func aBrokenRingAsksForAResetOnceAndThenIgnoresNotifies() throws {
        let driver = DriverQueue(memory: memory)
        try memory.store(UInt16(9), at: GuestAddress(driver.avail.rawValue + 2))
        let q = try driver.deviceQueue()
        let interrupt = RecordingInterrupt()
        var logged = 0
        for _ in 0..<1000 {
            q.serveAvailable(queue: 0, interrupt: interrupt, log: { _ in logged += 1 }) { _ in 0 }
        }
        #expect(logged == 1 && interrupt.needsReset == 1 && q.isBroken)
    }

    /// A wake-up serves at most its budget, then asks to run again (the I/O thread sees to its
    /// other events in between) — a ring refilled as fast as it drains cannot pin the thread.
    @Test func aWakeUpServesItsBudgetThenAsksToRunAgain() throws {
        var driver = DriverQueue(memory: memory)
        for i in UInt16(0)..<5 {
            try driver.setDescriptor(i, addr: 0x8000, len: 4)
            try driver.makeAvailable(i)
        }
        let q = try driver.deviceQueue()
        let interrupt = RecordingInterrupt()
        var served = 0
        q.serveAvailable(queue: 0, interrupt: interrupt, log: { _ in }, budget: 2) { _ in served += 1; return 0 }
        #expect(served == 2 && interrupt.servedAgain == 1 && interrupt.used == 1)
        q.serveAvailable(queue: 0, interrupt: interrupt, log: { _ in }, budget: 2) { _ in served += 1; return 0 }
        q.serveAvailable(queue: 0, interrupt: interrupt, log: { _ in }, budget: 2) { _ in served += 1; return 0 }
        #expect(served == 5 && interrupt.servedAgain == 2, "the last run finished under budget")
    }

    @Test func readableAfterWritableIsRefused() throws {
        var driver = DriverQueue(memory: memory)
        try driver.setDescriptor(0, addr: 0x8000, len: 4, flags: 1 | 2, next: 1)
        try driver.setDescriptor(1, addr: 0x8000, len: 4)
        try driver.makeAvailable(0)
        var chain = try #require(try driver.deviceQueue().popAvailable())
        #expect(throws: QueueError.readableAfterWritable) { try chain.collect() }
    }

    @Test func indirectTablesWorkOnceAndOnlyOnce() throws {
        var driver = DriverQueue(memory: memory)
        let table: UInt64 = 0x6000
        try driver.setDescriptor(0, addr: table, len: 48, flags: 4)
        try driver.setDescriptor(0, addr: 0x8000, len: 16, flags: 1, next: 1, table: table)
        try driver.setDescriptor(1, addr: 0x9000, len: 64, flags: 1 | 2, next: 2, table: table)
        try driver.setDescriptor(2, addr: 0xA000, len: 1, flags: 2, table: table)
        // Nested indirect, indirect with NEXT, and a table length that is not a multiple of 16.
        try driver.setDescriptor(1, addr: table, len: 48, flags: 4 | 1, next: 2)
        try driver.setDescriptor(2, addr: 0x7000, len: 16, flags: 4)
        try driver.setDescriptor(0, addr: table, len: 16, flags: 4, table: 0x7000)
        try driver.setDescriptor(3, addr: table, len: 40, flags: 4)
        for head: UInt16 in [0, 1, 2, 3] { try driver.makeAvailable(head) }
        let q = try driver.deviceQueue()
        var good = try #require(try q.popAvailable())
        #expect(try good.collect().map(\.length) == [16, 64, 1])
        var withNext = try #require(try q.popAvailable())
        #expect(throws: QueueError.indirectWithNext) { try withNext.collect() }
        var nested = try #require(try q.popAvailable())
        #expect(throws: QueueError.nestedIndirect) { try nested.collect() }
        var badLength = try #require(try q.popAvailable())
        #expect(throws: QueueError.invalidIndirectTable(length: 40)) { try badLength.collect() }
    }

    @Test func interruptSuppressionWithAndWithoutEventIndex() throws {
        var driver = DriverQueue(memory: memory)
        try driver.setDescriptor(0, addr: 0x8000, len: 4)
        for _ in 0..<3 { try driver.makeAvailable(0) }
        // Without EVENT_IDX: NO_INTERRUPT in avail.flags suppresses.
        let plain = try driver.deviceQueue()
        _ = try plain.popAvailable(); plain.addUsed(head: 0, written: 0)
        #expect(plain.needsInterrupt())
        try memory.store(UInt16(1), at: driver.avail)
        _ = try plain.popAvailable(); plain.addUsed(head: 0, written: 0)
        #expect(!plain.needsInterrupt())

        // With EVENT_IDX: interrupt only when used_event falls in [old, new).
        try memory.store(UInt16(0), at: driver.avail)
        try memory.zero(driver.used, count: 4)
        let q = try driver.deviceQueue(eventIndex: true)
        let usedEvent = GuestAddress(driver.avail.rawValue + 4 + 2 * 8)
        try memory.store(UInt16(1), at: usedEvent)          // "interrupt me after entry 1"
        _ = try q.popAvailable(); q.addUsed(head: 0, written: 0)
        #expect(!q.needsInterrupt())                        // used 0..<1: event 1 not reached
        _ = try q.popAvailable(); q.addUsed(head: 0, written: 0)
        #expect(q.needsInterrupt())                         // used 1..<2 covers event 1
        // avail_event (after the used ring) tells the driver where the device is.
        #expect(try memory.load(UInt16.self, at: GuestAddress(driver.used.rawValue + 4 + 8 * 8)) == 2)
    }
}
