import Diagnostics
import Glibc
import GuestMemory
import LinuxSupport
import Locking
import Virtio

/// virtio-rng (virtio 1.2 §5.4): one queue of device-writable buffers, filled from the host's
/// `getrandom(2)`.
public final class VirtioEntropy: VirtioDevice {
    public let deviceType = VirtioDeviceID.entropy
    public let name: String
    public let offeredFeatures = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc | VirtioFeature.ringEventIdx
    public let queueMaxSizes: [UInt16] = [256]
    /// At most this many bytes per request (per chain, not per buffer: 256 overlapping buffers
    /// of a small RAM would otherwise make one request cost 16 MiB of `getrandom`, and a full
    /// ring of them 4 GiB — seconds of I/O thread that a reset, and apus's exit, wait for).
    /// The device may fill less than the driver offered (virtio 1.2 §5.4.6).
    static let maxBytesPerRequest = 64 * 1024
    private let log: DeviceLog

    private struct Active: @unchecked Sendable {
        let queue: SplitQueue
        let interrupt: any VirtioInterrupt
    }
    private let active = Locked<Active?>(nil)

    public init(name: String = "virtio-rng", log: DeviceLog = .discard) {
        self.name = name
        self.log = log
    }

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        readConfigBytes([], offset: offset, into: buffer)
    }

    public func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {
        guard let queue = queues.first ?? nil else { throw QueueError.invalidSize(0, max: 256) }
        active.withLock { $0 = Active(queue: queue, interrupt: interrupt) }
    }

    public func reset() { active.withLock { $0 = nil } }

    public func processQueue(_ index: Int) {
        guard index == 0 else { return }
        // Holding the lock for the run makes `reset` wait for it: no guest-memory access after.
        active.withLock { active in
            guard let a = active else { return }
            a.queue.serveAvailable(queue: 0, interrupt: a.interrupt, log: { log.report("broken ring", "\($0); the device needs a reset") }) { chain in
                // The whole chain is still walked (and so validated); only the filling stops.
                var written = 0
                while let d = chain.next(), d.isWritable {
                    let n = min(Int(d.length), Self.maxBytesPerRequest - written)
                    guard n > 0, let host = try? a.queue.memory.hostPointer(d.address, length: UInt64(n)) else { continue }
                    written += fillRandom(host, count: n)
                }
                return UInt32(written)
            }
        }
    }
}
