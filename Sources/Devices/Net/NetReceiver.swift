import Diagnostics
import GuestMemory
import LinuxSupport
import Virtio

/// virtio-net's receive path: frames from the backend into the driver's receive buffers
/// (virtio 1.2 §5.1.6.3–4).
///
/// A frame is read into a host buffer first, and only then are chains taken for it: with
/// mergeable buffers one frame may need several, and how many is known only from its length.
/// A frame that finds too few buffers waits here (`pending`) until the driver posts more — it
/// is never dropped for that, and while it waits nothing more is read from the tap, so the
/// tap's own queue holds the rest and no loop spins on an empty ring.
final class NetReceiver {
    /// Largest frame with its header: a 64 KiB GSO frame, its Ethernet and VLAN headers, the
    /// 12-byte virtio header.
    static let bufferSize = 65536 + 14 + 4 + 12
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
    /// Length of a frame read but not yet delivered (0: none).
    private(set) var pending = 0

    deinit { buffer.deallocate() }

    /// Why a run ended.
    enum Outcome: Equatable {
        /// The backend has nothing more (its fd reports the next frame).
        case backendEmpty
        /// A frame waits for receive buffers (the driver's next notify brings them).
        case waitingForBuffers
        /// `budget` frames were delivered and there may be more.
        case budgetSpent
    }

    /// Forgets a frame held for a driver that has gone (reset).
    func dropPending() { pending = 0 }

    /// Moves up to `budget` frames from `backend` into `queue`. Returns how many used entries
    /// were added (the caller interrupts once for all of them) and why it stopped.
    func run(queue: SplitQueue, backend: any NetBackend, headerSize: Int, mergeable: Bool,
             budget: Int, log: DeviceLog) throws(QueueError) -> (used: Int, outcome: Outcome) {
        var used = 0
        for _ in 0..<budget {
            if pending == 0 {
                let n: Int
                do { n = try backend.receive(into: buffer) } catch {
                    log.report("backend read failed", "\(error)")
                    return (used, .backendEmpty)
                }
                if n == 0 { return (used, .backendEmpty) }
                guard n > headerSize else { log.report("short frame from the backend", "\(n) bytes dropped"); continue }
                pending = n
            }
            switch try deliver(length: pending, queue: queue, headerSize: headerSize, mergeable: mergeable, log: log) {
            case let .delivered(entries):
                used += entries
                pending = 0
            case .dropped:
                pending = 0
            case .noBuffers:
                return (used, .waitingForBuffers)
            }
        }
        return (used, .budgetSpent)
    }

    enum Delivery: Equatable { case delivered(usedEntries: Int), dropped, noBuffers }

    /// One receive chain: its writable buffers and their total size.
    private struct Chain {
        let head: UInt16
        var buffers: [Descriptor] = []
        var capacity = 0
    }

    /// Copies the `length`-byte frame in the host buffer into one chain, or with mergeable
    /// buffers into as many as it needs, and returns them used.
    func deliver(length: Int, queue: SplitQueue, headerSize: Int, mergeable: Bool,
                 log: DeviceLog) throws(QueueError) -> Delivery {
        var chains: [Chain] = []
        var capacity = 0
        while capacity < length {
            guard let chain = try takeChain(queue) else {
                // A buffer posted since we looked is taken at once; otherwise the driver's next
                // notify (which hasAvailable asked for) resumes the frame, and the chains taken
                // so far go back.
                if queue.hasAvailable() { continue }
                queue.unpop(UInt16(chains.count))
                return .noBuffers
            }
            chains.append(chain)
            capacity += chain.capacity
            let firstTooSmall = chains.count == 1 && chain.capacity < headerSize
            // Without mergeable buffers one chain must hold the whole frame; with them, the
            // first must hold the header (§5.1.6.3.1), and a ring full of buffers must be enough.
            if firstTooSmall || (!mergeable && capacity < length) {
                log.report("receive buffer too small", "\(chain.capacity)-byte receive buffer for a \(length)-byte frame (header included); frame dropped")
                // The driver gets the buffer back empty (it counts a length error) and posts it anew.
                queue.addUsed(head: chain.head, written: 0)
                return .dropped
            }
            if !mergeable { break }
            if capacity < length && chains.count == Int(queue.size) {
                queue.unpop(UInt16(chains.count))
                log.report("receive ring too small", "all \(queue.size) receive buffers hold \(capacity) bytes, the frame \(length); frame dropped")
                return .dropped
            }
        }
        if headerSize == 12 {
            // num_buffers: the chains this frame spans (1 without mergeable buffers).
            buffer.storeBytes(of: UInt16(chains.count).littleEndian, toByteOffset: VirtioNetHeader.numBuffersOffset, as: UInt16.self)
        }
        var copied = 0
        for chain in chains {
            var written = 0
            for d in chain.buffers where copied < length {
                let n = min(Int(d.length), length - copied)
                guard let host = try? queue.memory.hostPointer(d.address, length: UInt64(n)) else { continue }
                host.copyMemory(from: buffer.baseAddress! + copied, byteCount: n)
                copied += n
                written += n
            }
            queue.addUsed(head: chain.head, written: UInt32(written))
        }
        return .delivered(usedEntries: chains.count)
    }

    /// The next available chain's writable buffers (readable ones have no place in a receive
    /// chain and are skipped), or nil when the driver has posted none.
    private func takeChain(_ queue: SplitQueue) throws(QueueError) -> Chain? {
        guard var walk = try queue.popAvailable() else { return nil }
        var chain = Chain(head: walk.head)
        while let d = walk.next() {
            guard d.isWritable, d.length > 0 else { continue }
            chain.buffers.append(d)
            chain.capacity += Int(d.length)
        }
        if let error = walk.error { throw error }
        return chain
    }
}
