import Locking
import Diagnostics
import GuestMemory
import Synchronization
import Virtio

/// virtio-balloon (virtio 1.2 §5.5): the host asks the guest for memory back and the guest
/// hands over pages, which Apus returns to the host kernel.
///
/// Queues, numbered as Linux numbers them (see `BalloonQueueLayout`): inflate and deflate carry
/// arrays of 32-bit PFNs of 4 KiB pages; stats (with STATS_VQ) one buffer of statistics the
/// device holds until it wants fresh numbers; reporting (with REPORTING) scatter lists of free
/// ranges. Inflated and reported pages are discarded with MADV_DONTNEED, so Apus's resident
/// memory drops; deflated ones need nothing (the guest's next touch faults in a zero page).
///
/// Configuration (little endian, also on legacy transports): `num_pages` @0, the target the
/// host sets, and `actual` @4, which the driver writes; nothing else is writable.
///
/// All queue work, and every touch of a queue from `requestStatistics`, happens under one lock,
/// so `reset` waits for it and the device never touches guest memory after a reset.
public final class VirtioBalloon: VirtioDevice, BalloonControl {
    static let queueSize: UInt16 = 128
    /// The most PFNs taken from one buffer: a buffer is the guest's to size (Linux sends at
    /// most 256), and overlapping descriptors could otherwise make one request cost a walk of
    /// gigabytes of PFNs. The rest are ignored — a page the host does not reclaim is harmless.
    public static let maxPagesPerBuffer = 16384
    static let numPagesOffset = 0, actualOffset = 4, configSize = 8

    public let deviceType = VirtioDeviceID.balloon
    public let name: String
    public let offeredFeatures: UInt64
    public let queueMaxSizes: [UInt16]
    private let options: BalloonOptions
    private let ramSize: UInt64
    private let timer: any DeviceTimer
    private let log: DeviceLog

    private struct Config { var numPages: UInt32, actual: UInt32 }
    /// Apart from the queue state: config accesses come from vCPUs and must not wait for a
    /// queue run.
    private let config: Locked<Config>

    private struct Active: @unchecked Sendable {
        let layout: BalloonQueueLayout
        let queues: [SplitQueue?]
        let interrupt: any VirtioInterrupt

        func queue(_ role: BalloonQueueRole) -> (index: Int, queue: SplitQueue)? {
            guard let index = layout.index(of: role), index < queues.count, let q = queues[index] else { return nil }
            return (index, q)
        }
    }
    private struct Waiter {
        let id: UInt64
        let completion: @Sendable ([UInt16: UInt64]?) -> Void
    }
    private struct State: @unchecked Sendable {
        var active: Active?
        /// Bumped by every activation and reset: periodic polls of an older one stop.
        var generation: UInt64 = 0
        /// The stats buffer the driver lent, held until the device wants fresh numbers.
        var heldStats: UInt16?
        var latest: [UInt16: UInt64]?
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 0
        var counters = BalloonCounters()
    }
    private let state = Locked(State())

    /// - Parameters:
    ///   - ramSize: the guest's RAM; a larger target is clamped to it.
    ///   - timer: runs statistics timeouts and polls on the device's I/O thread.
    public init(name: String = "virtio-balloon", options: BalloonOptions = BalloonOptions(), ramSize: UInt64,
                timer: any DeviceTimer, log: DeviceLog = .discard) {
        self.name = name
        self.options = options
        self.ramSize = ramSize
        self.timer = timer
        self.log = log
        var features = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc | VirtioFeature.ringEventIdx | BalloonFeature.statsVQ
        if options.deflateOnOOM { features |= BalloonFeature.deflateOnOOM }
        if options.freePageReporting { features |= BalloonFeature.reporting }
        offeredFeatures = features
        // As many queues as the offered features allow; fewer are used when the driver
        // negotiates less.
        queueMaxSizes = Array(repeating: Self.queueSize, count: BalloonQueueLayout(features: features).roles.count)
        config = Locked(Config(numPages: Self.pages(options.initialTarget, ramSize), actual: 0))
    }

    private static func pages(_ bytes: UInt64, _ ramSize: UInt64) -> UInt32 {
        UInt32(clamping: min(bytes, ramSize) >> PageFrameRuns.pageShift)
    }

    // MARK: Configuration space

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        let c = config.withLock { $0 }
        var bytes = [UInt8](repeating: 0, count: Self.configSize)
        bytes.withUnsafeMutableBytes {
            $0.storeBytes(of: c.numPages.littleEndian, toByteOffset: Self.numPagesOffset, as: UInt32.self)
            $0.storeBytes(of: c.actual.littleEndian, toByteOffset: Self.actualOffset, as: UInt32.self)
        }
        readConfigBytes(bytes, offset: offset, into: buffer)
    }

    /// Only `actual` is the driver's to write, whole or byte by byte (the legacy PCI driver
    /// writes config a byte at a time); any write reaching outside it is ignored.
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {
        guard offset >= Self.actualOffset, bytes.count <= Self.configSize - offset, !bytes.isEmpty else {
            log.report("config write outside actual", "ignored a \(bytes.count)-byte config write at offset \(offset): only actual (offset 4) is writable")
            return
        }
        config.withLock { c in
            var value = c.actual.littleEndian
            withUnsafeMutableBytes(of: &value) { v in
                for (i, byte) in bytes.enumerated() { v[offset - Self.actualOffset + i] = byte }
            }
            c.actual = UInt32(littleEndian: value)
        }
    }

    // MARK: BalloonControl

    public func setTarget(bytes: UInt64) {
        let pages = Self.pages(bytes, ramSize)
        config.withLock { $0.numPages = pages }
        // Before DRIVER_OK there is no one to tell: Linux reads num_pages when it probes.
        state.withLock { $0.active?.interrupt }?.signalConfigChange()
    }

    public var sizes: (target: UInt64, actual: UInt64) {
        let c = config.withLock { $0 }
        return (UInt64(c.numPages) << PageFrameRuns.pageShift, UInt64(c.actual) << PageFrameRuns.pageShift)
    }

    /// The guest's latest statistics, if it sent any (kept across a reset).
    public var latestStatistics: [UInt16: UInt64]? { state.withLock { $0.latest } }

    /// What the balloon did so far.
    public var counters: BalloonCounters { state.withLock { $0.counters } }

    public func requestStatistics(timeoutMilliseconds: Int, _ completion: @escaping @Sendable ([UInt16: UInt64]?) -> Void) {
        let id: UInt64? = state.withLock { s in
            guard let a = s.active, let (index, q) = a.queue(.stats), !q.isBroken else { return nil }
            let id = s.nextWaiter
            s.nextWaiter += 1
            s.waiters.append(Waiter(id: id, completion: completion))
            // Giving the held buffer back is the request; without one, a request is already
            // out (or the driver has not lent its first buffer yet) and the next buffer answers.
            if let head = s.heldStats {
                s.heldStats = nil
                q.addUsed(head: head, written: 0)
                if q.needsInterrupt() { a.interrupt.signalUsedBuffers(queue: index) }
            }
            return id
        }
        guard let id else {
            timer.schedule(afterMilliseconds: 0) { completion(nil) }
            return
        }
        timer.schedule(afterMilliseconds: max(timeoutMilliseconds, 0)) { [weak self] in
            let waiter = self?.state.withLock { s -> Waiter? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i)
            }
            waiter?.completion(nil)
        }
    }

    /// For `--stats`: sizes, what the balloon did, and the guest's latest statistics.
    public var report: String {
        let (target, actual) = sizes
        let c = counters
        var lines = ["balloon: target \(target >> 20) MiB, actual \(actual >> 20) MiB; inflated \(c.inflatedPages) pages, deflated \(c.deflatedPages), dropped \(c.droppedPages); \(c.discardedBytes >> 20) MiB given back to the host, \(c.reportedBytes >> 20) MiB reported free; \(c.resets) resets"]
        if let stats = latestStatistics {
            let names = ["swap-in", "swap-out", "major-faults", "minor-faults", "free", "total", "available", "caches",
                         "hugetlb-allocations", "hugetlb-failures", "oom-kills", "alloc-stalls", "async-scans", "direct-scans",
                         "async-reclaims", "direct-reclaims"]
            lines.append("balloon: guest statistics: " + stats.keys.sorted().map { tag in
                "\(Int(tag) < names.count ? names[Int(tag)] : "tag\(tag)")=\(stats[tag]!)"
            }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Lifecycle

    public func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {
        guard queues.count >= 2, queues[0] != nil, queues[1] != nil else { throw QueueError.invalidSize(0, max: Self.queueSize) }
        let active = Active(layout: BalloonQueueLayout(features: features), queues: queues, interrupt: interrupt)
        let generation = state.withLock { s in
            s.active = active
            s.generation += 1
            return s.generation
        }
        // Linux lends its first stats buffer (and kicks) before DRIVER_OK, when the kick found
        // no active device: look at every queue now.
        for index in active.layout.roles.indices { processQueue(index) }
        if let seconds = options.statisticsInterval, seconds > 0, active.queue(.stats) != nil {
            schedulePoll(every: seconds, generation: generation)
        }
    }

    public func reset() {
        let orphans = state.withLock { s -> [Waiter] in
            s.active = nil
            s.generation += 1
            s.heldStats = nil
            s.counters.resets += 1
            // `latest` stays: it describes the guest, not the device (and a driver that resets
            // the device on its way out would otherwise take the last figures with it).
            defer { s.waiters = [] }
            return s.waiters
        }
        config.withLock { $0.actual = 0 }
        // Not here (a vCPU thread, inside the transport's reset): on the device's thread.
        for w in orphans { timer.schedule(afterMilliseconds: 0) { w.completion(nil) } }
    }

    private func schedulePoll(every seconds: Int, generation: UInt64) {
        timer.schedule(afterMilliseconds: seconds * 1000) { [weak self] in
            guard let self, self.state.withLock({ $0.generation }) == generation else { return }
            // The answer lands in `latestStatistics`.
            self.requestStatistics(timeoutMilliseconds: seconds * 1000) { _ in }
            self.schedulePoll(every: seconds, generation: generation)
        }
    }

    // MARK: Queues

    public func processQueue(_ index: Int) {
        var answered: ([Waiter], [UInt16: UInt64])?
        // The whole run holds the lock, so a concurrent reset waits for it.
        state.withLock { s in
            guard let a = s.active, let role = a.layout.role(ofQueue: index), index < a.queues.count,
                  let q = a.queues[index] else { return }
            let broken: (QueueError) -> Void = { [log] in log.report("broken ring", "\($0); the device needs a reset") }
            switch role {
            case .inflate, .deflate:
                q.serveAvailable(queue: index, interrupt: a.interrupt, log: broken) { chain in
                    takePages(&chain, memory: q.memory, inflate: role == .inflate, counters: &s.counters)
                    return 0
                }
            case .reporting:
                q.serveAvailable(queue: index, interrupt: a.interrupt, log: broken) { chain in
                    takeFreeRanges(&chain, memory: q.memory, counters: &s.counters)
                    return 0
                }
            case .stats:
                answered = takeStatistics(q, index: index, state: &s, interrupt: a.interrupt, broken: broken)
            case .freePageHint:
                break  // never offered
            }
        }
        if let (waiters, stats) = answered { for w in waiters { w.completion(stats) } }
    }

    /// An inflate or deflate buffer: the device-readable bytes are little-endian u32 PFNs.
    private func takePages(_ chain: inout DescriptorChain, memory: GuestMemory, inflate: Bool, counters: inout BalloonCounters) {
        var discarded: UInt64 = 0
        var runs = PageFrameRuns(memory: memory) { address, length in
            if inflate { discarded += (try? memory.discard(address, length: length)) ?? 0 }
        }
        var budget = Self.maxPagesPerBuffer
        var truncated = false
        while let d = chain.next() {
            guard !d.isWritable, let base = try? memory.hostPointer(d.address, length: UInt64(d.length)) else { continue }
            let count = Int(d.length) / 4
            let take = min(count, budget)
            for i in 0..<take { runs.add(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            budget -= take
            if take < count { truncated = true }
        }
        runs.finish()
        if inflate { counters.inflatedPages += runs.accepted } else { counters.deflatedPages += runs.accepted }
        counters.droppedPages += runs.dropped
        counters.discardedBytes += discarded
        if let pfn = runs.firstDropped {
            log.report("PFN outside RAM", "dropped \(runs.dropped) page frame number(s) outside guest RAM in a\(inflate ? "n inflate" : " deflate") buffer, the first \(hex(pfn))")
        }
        if truncated {
            log.report("balloon buffer over limit", "ignored the page frame numbers of a balloon buffer past the first \(Self.maxPagesPerBuffer)")
        }
    }

    /// A free page report: each descriptor is a free range (address and length), whole pages
    /// of which go back to the host. The driver posts them device-writable; the device writes
    /// nothing and accepts either direction.
    private func takeFreeRanges(_ chain: inout DescriptorChain, memory: GuestMemory, counters: inout BalloonCounters) {
        while let d = chain.next() {
            // The chain already checked the range lies in one RAM region.
            let discarded = (try? memory.discard(d.address, length: UInt64(d.length))) ?? 0
            counters.reportedBytes += UInt64(d.length)
            counters.discardedBytes += discarded
        }
    }

    /// New statistics buffers: parse each, hold the newest, answer the waiters. A driver that
    /// lends a second buffer while the device holds one gets the older one back.
    private func takeStatistics(_ q: SplitQueue, index: Int, state s: inout State, interrupt: any VirtioInterrupt,
                                broken: (QueueError) -> Void) -> ([Waiter], [UInt16: UInt64])? {
        guard !q.isBroken else { return nil }
        var returned = false
        var fresh: [UInt16: UInt64]?
        // One ring's worth per run, as elsewhere: a driver lending buffer after buffer from
        // another vCPU must not keep this thread here.
        var served = 0
        do throws(QueueError) {
            while served < Int(q.size), var chain = try q.popAvailable() {
                served += 1
                var bytes: [UInt8] = []
                while let d = chain.next() {
                    guard !d.isWritable, bytes.count < BalloonStatistics.maxBytes else { continue }
                    let n = min(Int(d.length), BalloonStatistics.maxBytes - bytes.count)
                    bytes += (try? q.memory.readBytes(d.address, count: n)) ?? []
                }
                if let error = chain.error { throw error }
                if let old = s.heldStats {
                    q.addUsed(head: old, written: 0)
                    returned = true
                }
                s.heldStats = chain.head
                fresh = BalloonStatistics.parse(bytes)
            }
        } catch {
            q.markBroken()
            broken(error)
            interrupt.deviceNeedsReset()
            return nil
        }
        if returned && q.needsInterrupt() { interrupt.signalUsedBuffers(queue: index) }
        if served == Int(q.size) { interrupt.serveAgain(queue: index) }
        guard let fresh else { return nil }
        s.latest = fresh
        defer { s.waiters = [] }
        return (s.waiters, fresh)
    }
}
