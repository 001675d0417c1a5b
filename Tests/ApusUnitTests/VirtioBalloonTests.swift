import Locking
import Devices
import Diagnostics
import Glibc
import GuestMemory
import Machine
import Synchronization
import Testing
import Virtio

/// A clock turned by hand: `fire` runs what is due.
final class ManualTimer: DeviceTimer, @unchecked Sendable {
    private let pending = Locked<[(ms: Int, action: @Sendable () -> Void)]>([])
    func schedule(afterMilliseconds milliseconds: Int, _ action: @escaping @Sendable () -> Void) {
        pending.withLock { $0.append((milliseconds, action)) }
    }
    var delays: [Int] { pending.withLock { $0.map(\.ms) } }
    /// Runs every scheduled action whose delay is at most `upTo` ms (and forgets it).
    func fire(upTo: Int = .max) {
        let due = pending.withLock { list -> [@Sendable () -> Void] in
            let due = list.filter { $0.ms <= upTo }.map(\.action)
            list.removeAll { $0.ms <= upTo }
            return due
        }
        for action in due { action() }
    }
}

/// Whether each 4 KiB page of `[address, +length)` is resident in the host (mincore).
func residentPages(_ memory: GuestMemory, _ address: UInt64, pages: Int) throws -> [Bool] {
    let host = try memory.hostPointer(GuestAddress(address), length: UInt64(pages) * 4096)
    var vector = [UInt8](repeating: 0, count: pages)
    #expect(mincore(host, pages * 4096, &vector) == 0)
    return vector.map { $0 & 1 != 0 }
}

@Suite struct PageFrameRunsTests {
    /// RAM at [0, 64 KiB) and [128 KiB, 128 KiB + 6 KiB): a hole between, half a page at the end.
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x10000), (GuestAddress(0x20000), 0x1800)])

    func runs(_ pfns: [UInt32], in memory: GuestMemory? = nil) -> (runs: [[UInt64]], accepted: Int, dropped: Int, first: UInt32?) {
        var out: [[UInt64]] = []
        var r = PageFrameRuns(memory: memory ?? self.memory) { out.append([$0.rawValue, $1]) }
        for p in pfns { r.add(p) }
        r.finish()
        return (out, r.accepted, r.dropped, r.firstDropped)
    }

    @Test func contiguousPagesMergeInEitherDirection() {
        let r = runs([1, 2, 3, 9, 8, 7, 12])
        #expect(r.runs == [[0x1000, 0x3000], [0x7000, 0x3000], [0xC000, 0x1000]])
        #expect(r.accepted == 7 && r.dropped == 0)
    }

    @Test func duplicatesAreHarmlessRepeats() {
        let r = runs([4, 4, 5, 5])
        #expect(r.runs == [[0x4000, 0x1000], [0x4000, 0x2000], [0x5000, 0x1000]])
        #expect(r.accepted == 4)
    }

    @Test func pagesOutsideRAMAreDroppedAndCounted() {
        // 0x10: the hole; 0x21: half a page at the region's end; past RAM; the largest PFN.
        let r = runs([0xF, 0x10, 0x20, 0x21, 0x22, 0x1_0000, 0xFFFF_FFFF])
        #expect(r.runs == [[0xF000, 0x1000], [0x20000, 0x1000]])
        #expect(r.accepted == 2 && r.dropped == 5 && r.first == 0x10)
    }

    @Test func aRunNeverSpansTwoRegions() throws {
        let adjacent = try GuestMemory(ranges: [(GuestAddress(0), 0x2000), (GuestAddress(0x2000), 0x2000)])
        let r = runs([0, 1, 2, 3], in: adjacent)
        #expect(r.runs == [[0, 0x2000], [0x2000, 0x2000]])
    }
}

@Suite struct BalloonQueueLayoutTests {
    typealias F = BalloonFeature
    @Test(arguments: [
        (UInt64(0), [BalloonQueueRole.inflate, .deflate]),
        (F.statsVQ, [.inflate, .deflate, .stats]),
        (F.reporting, [.inflate, .deflate, .reporting]),
        (F.statsVQ | F.reporting, [.inflate, .deflate, .stats, .reporting]),
        (F.statsVQ | F.deflateOnOOM | F.reporting, [.inflate, .deflate, .stats, .reporting]),
        (F.freePageHint | F.reporting, [.inflate, .deflate, .freePageHint, .reporting]),
    ])
    func queuesShiftWhenAFeatureIsMissing(_ features: UInt64, _ roles: [BalloonQueueRole]) {
        let layout = BalloonQueueLayout(features: features)
        #expect(layout.roles == roles)
        for (i, role) in roles.enumerated() {
            #expect(layout.role(ofQueue: i) == role)
            #expect(layout.index(of: role) == i)
        }
        #expect(layout.role(ofQueue: roles.count) == nil && layout.role(ofQueue: -1) == nil)
    }

    @Test func offeredFeaturesAndQueueCount() {
        let plain = VirtioBalloon(ramSize: 1 << 20, timer: ManualTimer())
        #expect(plain.deviceType == 5)
        #expect(plain.offeredFeatures & (F.statsVQ | VirtioFeature.version1) == F.statsVQ | VirtioFeature.version1)
        #expect(plain.offeredFeatures & (F.deflateOnOOM | F.reporting | F.mustTellHost | F.freePageHint | F.pagePoison) == 0)
        #expect(plain.queueMaxSizes.count == 3)
        let all = VirtioBalloon(options: BalloonOptions(deflateOnOOM: true, freePageReporting: true), ramSize: 1 << 20, timer: ManualTimer())
        #expect(all.offeredFeatures & (F.deflateOnOOM | F.reporting) == F.deflateOnOOM | F.reporting)
        #expect(all.queueMaxSizes.count == 4)
    }
}

@Suite struct VirtioBalloonTests {
    typealias F = BalloonFeature
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x10_0000)])
    /// Buffers (PFN lists, statistics) live at 0x80000; queue n's rings at n × 0x10000.
    static let buffer: UInt64 = 0x80000

    struct Rig {
        let device: VirtioBalloon
        var drivers: [DriverQueue]
        let interrupt: RecordingInterrupt
        let timer: ManualTimer
        let events: GuestEventLog
    }

    func makeRig(features: UInt64 = VirtioFeature.version1 | F.statsVQ, options: BalloonOptions = BalloonOptions(),
                 activate: Bool = true) throws -> Rig {
        let timer = ManualTimer()
        let events = GuestEventLog(sink: { _ in })
        let device = VirtioBalloon(options: options, ramSize: memory.totalSize, timer: timer, log: events.device("virtio-balloon"))
        let count = BalloonQueueLayout(features: features).roles.count
        let drivers = (0..<count).map { DriverQueue(memory: memory, size: 8, base: UInt64($0) * 0x10000) }
        let interrupt = RecordingInterrupt()
        if activate {
            try device.activate(features: features, queues: try drivers.map { try $0.deviceQueue() }, interrupt: interrupt)
        }
        return Rig(device: device, drivers: drivers, interrupt: interrupt, timer: timer, events: events)
    }

    /// Posts one device-readable buffer of `pfns` on queue `q`.
    func post(_ rig: inout Rig, queue q: Int, pfns: [UInt32], at address: UInt64 = buffer) throws {
        for (i, p) in pfns.enumerated() { try memory.store(p, at: GuestAddress(address + 4 * UInt64(i))) }
        let head = rig.drivers[q].availIdx % rig.drivers[q].size
        try rig.drivers[q].setDescriptor(head, addr: address, len: UInt32(4 * pfns.count))
        try rig.drivers[q].makeAvailable(head)
    }

    func touch(_ address: UInt64, pages: Int) throws {
        for p in 0..<pages { try memory.store(UInt8(0xA5), at: GuestAddress(address + UInt64(p) * 4096 + 17)) }
    }

    @Test func inflateGivesTouchedPagesBackToTheHost() throws {
        var rig = try makeRig()
        try touch(0x40000, pages: 16)
        #expect(try residentPages(memory, 0x40000, pages: 16).allSatisfy { $0 })
        // 16 pages in descending order (as Linux often sends them), two PFNs past RAM, a repeat.
        try post(&rig, queue: 0, pfns: (0x40...0x4F).reversed() + [0x100, 0x4_0000, 0x45])
        rig.device.processQueue(0)
        #expect(try residentPages(memory, 0x40000, pages: 16).allSatisfy { !$0 })
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x40000 + 17)) == 0, "a discarded page reads as zero")
        #expect(try rig.drivers[0].usedIdx() == 1 && rig.interrupt.used == 1)
        #expect(try rig.drivers[0].usedElement(0).len == 0)
        let c = rig.device.counters
        #expect(c.inflatedPages == 17 && c.droppedPages == 2 && c.discardedBytes == 17 * 4096)
        #expect(rig.events.count("virtio-balloon", cause: "PFN outside RAM") == 1)
        #expect(rig.device.report.contains("inflated 17 pages, deflated 0, dropped 2"))
        // Pages next door were not touched by it.
        try touch(0x50000, pages: 1)
        #expect(try residentPages(memory, 0x50000, pages: 1) == [true])
    }

    @Test func deflateOnlyCountsAndLeavesMemoryAlone() throws {
        var rig = try makeRig()
        try touch(0x40000, pages: 4)
        try post(&rig, queue: 1, pfns: [0x40, 0x41, 0x42, 0x43, 0xFFFF_FFFF])
        rig.device.processQueue(1)
        #expect(try residentPages(memory, 0x40000, pages: 4).allSatisfy { $0 })
        #expect(try rig.drivers[1].usedIdx() == 1)
        #expect(rig.device.counters.deflatedPages == 4 && rig.device.counters.droppedPages == 1)
        #expect(rig.events.count("virtio-balloon", cause: "PFN outside RAM") == 1)
    }

    @Test func freePageReportingDiscardsRangesOnTheShiftedQueue() throws {
        // Without STATS_VQ the reporting queue is queue 2.
        var rig = try makeRig(features: VirtioFeature.version1 | F.reporting, options: BalloonOptions(freePageReporting: true))
        try touch(0x40000, pages: 8)
        try touch(0x60000, pages: 2)
        // Linux posts the ranges device-writable: 8 pages, then 1.5 pages (only the whole page goes).
        try rig.drivers[2].setDescriptor(0, addr: 0x40000, len: 0x8000, flags: 1 | 2, next: 1)
        try rig.drivers[2].setDescriptor(1, addr: 0x60000, len: 0x1800, flags: 2)
        try rig.drivers[2].makeAvailable(0)
        rig.device.processQueue(2)
        #expect(try residentPages(memory, 0x40000, pages: 8).allSatisfy { !$0 })
        #expect(try residentPages(memory, 0x60000, pages: 2) == [false, true])
        #expect(try rig.drivers[2].usedIdx() == 1 && rig.drivers[2].usedElement(0).len == 0)
        #expect(rig.device.counters.reportedBytes == 0x9800 && rig.device.counters.discardedBytes == 0x9000)
    }

    /// Writes `entries` (tag, value) packed, 10 bytes each, plus `trailing` stray bytes.
    func postStats(_ rig: inout Rig, _ entries: [(UInt16, UInt64)], trailing: Int = 0, queue: Int = 2) throws {
        var at = Self.buffer
        for (tag, value) in entries {
            try memory.store(tag, at: GuestAddress(at))
            try memory.store(value, at: GuestAddress(at + 2))
            at += 10
        }
        let head = rig.drivers[queue].availIdx % rig.drivers[queue].size
        try rig.drivers[queue].setDescriptor(head, addr: Self.buffer, len: UInt32(10 * entries.count + trailing))
        try rig.drivers[queue].makeAvailable(head)
    }

    @Test func statisticsBufferIsHeldReturnedOnRequestAndParsed() throws {
        var rig = try makeRig()
        // The driver lends its first buffer: parsed, held (not returned).
        try postStats(&rig, [(4, 100), (5, 200), (99, 5)], trailing: 7)
        rig.device.processQueue(2)
        #expect(rig.device.latestStatistics == [4: 100, 5: 200], "unknown tags and a partial entry are ignored")
        #expect(try rig.drivers[2].usedIdx() == 0 && rig.interrupt.used == 0)

        let answer = Locked<[[UInt16: UInt64]?]>([])
        rig.device.requestStatistics(timeoutMilliseconds: 500) { stats in answer.withLock { $0.append(stats) } }
        // Asking = returning the held buffer, empty.
        #expect(try rig.drivers[2].usedIdx() == 1 && rig.drivers[2].usedElement(0) == (0, 0))
        #expect(rig.interrupt.used == 1 && answer.withLock { $0.isEmpty })
        #expect(rig.timer.delays == [500])

        // The driver refills and lends it again: the request is answered, the buffer held.
        try postStats(&rig, [(4, 150), (6, 300)])
        rig.device.processQueue(2)
        #expect(answer.withLock { $0 } == [[4: 150, 6: 300]])
        #expect(rig.device.report.contains("guest statistics: free=150 available=300"))
        #expect(try rig.drivers[2].usedIdx() == 1)
        // The timeout that follows finds nobody waiting.
        rig.timer.fire()
        #expect(answer.withLock { $0.count } == 1)
    }

    @Test func aRequestTheGuestNeverAnswersTimesOut() throws {
        var rig = try makeRig()
        try postStats(&rig, [(4, 1)])
        rig.device.processQueue(2)
        let answers = Locked<[[UInt16: UInt64]?]>([])
        for _ in 0..<2 { rig.device.requestStatistics(timeoutMilliseconds: 100) { s in answers.withLock { $0.append(s) } } }
        #expect(try rig.drivers[2].usedIdx() == 1, "one buffer out, however many ask")
        rig.timer.fire()
        #expect(answers.withLock { $0.count } == 2 && answers.withLock { $0.allSatisfy { $0 == nil } })
    }

    @Test func noStatisticsWithoutTheFeatureOrBeforeDriverOK() throws {
        for rig in [try makeRig(features: VirtioFeature.version1), try makeRig(activate: false)] {
            let answers = Locked<[[UInt16: UInt64]?]>([])
            rig.device.requestStatistics(timeoutMilliseconds: 1000) { s in answers.withLock { $0.append(s) } }
            #expect(rig.timer.delays == [0])
            rig.timer.fire()
            #expect(answers.withLock { $0.count } == 1 && answers.withLock { $0[0] } == nil)
        }
    }

    @Test func aSecondBufferWhileOneIsHeldReturnsTheOlder() throws {
        var rig = try makeRig()
        try postStats(&rig, [(4, 1)])
        try postStats(&rig, [(4, 2)])
        rig.device.processQueue(2)
        #expect(try rig.drivers[2].usedIdx() == 1 && rig.drivers[2].usedElement(0).id == 0)
        #expect(rig.device.latestStatistics == [4: 2])
    }

    @Test func aDriverLendingBufferAfterBufferIsServedARingAtATime() throws {
        var rig = try makeRig()
        for i in 0..<8 { try postStats(&rig, [(4, UInt64(i))]) }
        rig.device.processQueue(2)
        // A ring's worth taken, all but the newest given back, and another run asked for in
        // case the driver kept lending.
        #expect(try rig.drivers[2].usedIdx() == 7 && rig.interrupt.servedAgain == 1)
        #expect(rig.device.latestStatistics == [4: 7])
        try postStats(&rig, [(4, 8)])
        rig.device.processQueue(2)
        #expect(try rig.drivers[2].usedIdx() == 8 && rig.device.latestStatistics == [4: 8])
    }

    @Test func aFirstBufferLentBeforeDriverOKIsTakenAtActivation() throws {
        var rig = try makeRig(activate: false)
        try postStats(&rig, [(5, 42)])
        rig.device.processQueue(2)  // the kick before DRIVER_OK finds nothing active
        #expect(rig.device.latestStatistics == nil)
        try rig.device.activate(features: VirtioFeature.version1 | F.statsVQ, queues: try rig.drivers.map { try $0.deviceQueue() }, interrupt: rig.interrupt)
        #expect(rig.device.latestStatistics == [5: 42])
    }

    @Test func periodicPollingAsksEveryInterval() throws {
        var rig = try makeRig(options: BalloonOptions(statisticsInterval: 3))
        #expect(rig.timer.delays == [3000])
        try postStats(&rig, [(4, 1)])
        rig.device.processQueue(2)
        rig.timer.fire(upTo: 3000)  // the poll: the buffer goes back, the next poll is set
        #expect(try rig.drivers[2].usedIdx() == 1)
        #expect(rig.timer.delays.sorted() == [3000, 3000])
        try postStats(&rig, [(4, 7)])
        rig.device.processQueue(2)
        #expect(rig.device.latestStatistics == [4: 7])
    }

    @Test func resetForgetsTheHeldBufferAndTheWaiters() throws {
        var rig = try makeRig()
        try postStats(&rig, [(4, 1)])
        rig.device.processQueue(2)
        let answers = Locked<[[UInt16: UInt64]?]>([])
        rig.device.requestStatistics(timeoutMilliseconds: 100) { s in answers.withLock { $0.append(s) } }
        let before = try rig.drivers[2].usedIdx()
        writeConfig(rig.device, 4, [1, 0, 0, 0])
        rig.device.reset()
        #expect(rig.device.sizes.actual == 0 && rig.device.counters.resets == 1)
        #expect(rig.device.latestStatistics == [4: 1], "the guest's last figures are kept")
        rig.timer.fire()
        #expect(answers.withLock { $0.count } == 1 && answers.withLock { $0[0] } == nil)
        // Nothing touches the rings after the reset.
        try postStats(&rig, [(4, 2)])
        try post(&rig, queue: 0, pfns: [0x40])
        try touch(0x40000, pages: 1)
        rig.device.processQueue(0)
        rig.device.processQueue(2)
        rig.device.requestStatistics(timeoutMilliseconds: 100) { _ in }
        #expect(try rig.drivers[2].usedIdx() == before && rig.drivers[0].usedIdx() == 0)
        #expect(try residentPages(memory, 0x40000, pages: 1) == [true])
    }

    func readConfig(_ device: VirtioBalloon, _ offset: Int) -> UInt32 {
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { device.readConfig(offset: offset, into: $0) }
        return UInt32(littleEndian: v)
    }

    func writeConfig(_ device: VirtioBalloon, _ offset: Int, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { device.writeConfig(offset: offset, bytes: $0) }
    }

    @Test func configSpaceNumPagesAndActual() throws {
        let rig = try makeRig(options: BalloonOptions(initialTarget: 64 << 10), activate: false)
        #expect(readConfig(rig.device, 0) == 16, "size= is the target at boot, in 4 KiB pages")
        rig.device.setTarget(bytes: 512 << 10 + 100)
        #expect(readConfig(rig.device, 0) == 128 && rig.interrupt.config == 0, "no config interrupt before DRIVER_OK")
        try rig.device.activate(features: VirtioFeature.version1 | F.statsVQ, queues: try rig.drivers.map { try $0.deviceQueue() }, interrupt: rig.interrupt)
        rig.device.setTarget(bytes: 1 << 20)
        #expect(readConfig(rig.device, 0) == 256 && rig.interrupt.config == 1)
        rig.device.setTarget(bytes: 1 << 40)
        #expect(readConfig(rig.device, 0) == 256, "clamped to RAM")

        writeConfig(rig.device, 4, [0x10, 0, 0, 0])
        #expect(readConfig(rig.device, 4) == 16 && rig.device.sizes == (1 << 20, 16 * 4096))
        // Byte by byte, as the legacy PCI driver writes.
        for (i, b) in [UInt8(0x34), 0x12, 0, 0].enumerated() { writeConfig(rig.device, 4 + i, [b]) }
        #expect(readConfig(rig.device, 4) == 0x1234)
        // num_pages is the host's; writes reaching outside actual change nothing.
        writeConfig(rig.device, 0, [1, 0, 0, 0])
        writeConfig(rig.device, 0, [1, 0, 0, 0, 2, 0, 0, 0])
        writeConfig(rig.device, 6, [9, 9, 9, 9])
        writeConfig(rig.device, 8, [9])
        #expect(readConfig(rig.device, 0) == 256 && readConfig(rig.device, 4) == 0x1234)
        #expect(readConfig(rig.device, 8) == 0, "past the config reads as zero")
        #expect(rig.events.count("virtio-balloon", cause: "config write outside actual") == 4)
    }
}

@Suite struct IOEventLoopTimerTests {
    @Test func scheduledWorkRunsOnTheLoopInDeadlineOrder() throws {
        let loop = try IOEventLoop(name: "timer-test")
        try loop.start()
        defer { loop.stop() }
        let order = Locked<[Int]>([])
        loop.schedule(afterMilliseconds: 60) { order.withLock { $0.append(2) } }
        loop.schedule(afterMilliseconds: 10) { order.withLock { $0.append(1) } }
        for _ in 0..<300 where order.withLock({ $0.count }) < 2 { usleep(10_000) }
        #expect(order.withLock { $0 } == [1, 2])
    }
}
