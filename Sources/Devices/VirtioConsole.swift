import Diagnostics
import GuestMemory
import Locking
import Virtio

/// virtio-console (virtio 1.2 §5.3) with a single port: the guest's `hvc0`.
///
/// Queue 0 (receiveq) holds empty buffers the guest lends for input; queue 1 (transmitq) carries
/// the guest's output. Host input that arrives while the guest has no buffer waits in a bounded
/// backlog. Both queues and the backlog are guarded by one lock, because input arrives on the
/// console thread while notifications arrive on the I/O thread.
public final class VirtioConsole: VirtioDevice {
    static let receiveQueue = 0, transmitQueue = 1
    /// Input kept while the guest has no receive buffers; more is refused (the sender retries).
    public static let backlogCapacity = 64 * 1024

    public let deviceType = VirtioDeviceID.console
    public let name: String
    public let offeredFeatures = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc | VirtioFeature.ringEventIdx
    public let queueMaxSizes: [UInt16] = [256, 256]
    private let output: @Sendable (UnsafeRawBufferPointer) -> Void
    private let log: DeviceLog
    /// The most the device hands `output` at once: a descriptor is the guest's to size (all of
    /// RAM, if it likes), so it goes out in pieces, straight from guest memory.
    static let outputChunk = 64 * 1024

    private struct State: @unchecked Sendable {
        var receive: SplitQueue?
        var transmit: SplitQueue?
        var interrupt: (any VirtioInterrupt)?
        var backlog: [UInt8] = []
    }
    private let state = Locked(State())

    /// - Parameters:
    ///   - output: receives what the guest writes to hvc0, in pieces of at most 64 KiB that point
    ///     into guest memory (valid only during the call).
    public init(name: String = "virtio-console", output: @escaping @Sendable (UnsafeRawBufferPointer) -> Void,
                log: DeviceLog = .discard) {
        self.name = name
        self.output = output
        self.log = log
    }

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        // cols, rows (unused without VIRTIO_CONSOLE_F_SIZE), max_nr_ports = 1, emerg_wr.
        readConfigBytes([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], offset: offset, into: buffer)
    }

    public func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {
        state.withLock { s in
            s.receive = queues.count > 0 ? queues[0] : nil
            s.transmit = queues.count > 1 ? queues[1] : nil
            s.interrupt = interrupt
        }
        processQueue(Self.receiveQueue)  // input typed before the driver was ready
    }

    public func reset() {
        state.withLock { s in s.receive = nil; s.transmit = nil; s.interrupt = nil }
    }

    /// Queues host input for the guest; returns how many bytes were accepted.
    @discardableResult
    public func receive(_ bytes: [UInt8]) -> Int {
        let accepted = state.withLock { s -> Int in
            let n = min(bytes.count, Self.backlogCapacity - s.backlog.count)
            s.backlog += bytes.prefix(n)
            return n
        }
        processQueue(Self.receiveQueue)
        return accepted
    }

    public func processQueue(_ index: Int) {
        state.withLock { s in
            guard let interrupt = s.interrupt else { return }
            let queue = index == Self.transmitQueue ? s.transmit : index == Self.receiveQueue ? s.receive : nil
            // A broken ring waits for the reset it asked for, silently.
            guard let q = queue, !q.isBroken else { return }
            do {
                if index == Self.transmitQueue {
                    try drainTransmit(q, interrupt)
                } else {
                    try fillReceive(q, &s.backlog, interrupt)
                }
            } catch {
                q.markBroken()
                log.report("broken ring", "\(error); the device needs a reset")
                interrupt.deviceNeedsReset()
            }
        }
    }

    /// Writes out at most one ring's worth of chains per wake-up (then asks to be run again),
    /// so a guest refilling the ring from another vCPU cannot keep the I/O thread here.
    private func drainTransmit(_ q: SplitQueue, _ interrupt: any VirtioInterrupt) throws(QueueError) {
        var served = 0
        while served < Int(q.size), var chain = try q.popAvailable() {
            while let d = chain.next(), !d.isWritable {
                // The chain validated the range against RAM; no copy, no allocation.
                guard d.length > 0, let base = try? q.memory.hostPointer(d.address, length: UInt64(d.length)) else { continue }
                var offset = 0
                while offset < Int(d.length) {
                    let n = min(Self.outputChunk, Int(d.length) - offset)
                    output(UnsafeRawBufferPointer(start: base + offset, count: n))
                    offset += n
                }
            }
            if let error = chain.error { throw error }
            q.addUsed(head: chain.head, written: 0)
            served += 1
        }
        if served > 0 && q.needsInterrupt() { interrupt.signalUsedBuffers(queue: Self.transmitQueue) }
        if served == Int(q.size) { interrupt.serveAgain(queue: Self.transmitQueue) }
    }

    private func fillReceive(_ q: SplitQueue, _ backlog: inout [UInt8], _ interrupt: any VirtioInterrupt) throws(QueueError) {
        var completed = false
        while !backlog.isEmpty, var chain = try q.popAvailable() {
            var written = 0
            while let d = chain.next(), d.isWritable, written < backlog.count {
                let n = min(Int(d.length), backlog.count - written)
                try? q.memory.write(Array(backlog[written..<(written + n)]), to: d.address)
                written += n
            }
            if let error = chain.error { throw error }
            backlog.removeFirst(written)
            q.addUsed(head: chain.head, written: UInt32(written))
            completed = true
        }
        if completed && q.needsInterrupt() { interrupt.signalUsedBuffers(queue: Self.receiveQueue) }
    }
}
