import Diagnostics
import Glibc
import GuestMemory
import LinuxSupport
import Virtio

/// virtio-net's transmit path: each chain the driver posts is one frame (header first), handed
/// to the backend straight from guest memory with one `writev`.
///
/// When the backend cannot take a frame now (`EAGAIN`), the frame is copied aside and its chain
/// returned; transmission stops until the backend's fd reports writable, and then goes on with
/// the copy. Nothing is dropped for that and nothing spins.
final class NetTransmitter {
    /// Largest frame after the header: a 64 KiB GSO frame with its Ethernet and VLAN headers.
    static let maxFrame = 65536 + 14 + 4
    /// A frame the backend refused with `EAGAIN`, waiting for writable.
    private(set) var blocked: [UInt8]?
    private var pieces: [iovec] = []

    /// Forgets a blocked frame (reset).
    func dropBlocked() { blocked = nil }

    /// Sends the blocked frame if there is one. True when transmission may go on.
    func retryBlocked(backend: any NetBackend, log: DeviceLog) -> Bool {
        guard let frame = blocked else { return true }
        let sent = frame.withUnsafeBytes { bytes -> Bool in
            let one = [iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)]
            // A frame the backend refuses outright is dropped (`?? true`): it would never go.
            return one.withUnsafeBufferPointer { (try? backend.send($0)) ?? true }
        }
        if sent { blocked = nil }
        return sent
    }

    /// Sends up to `budget` frames from `queue`. Returns the used entries added and whether the
    /// budget ran out with chains left (the caller comes back).
    func run(queue: SplitQueue, backend: any NetBackend, headerSize: Int, budget: Int,
             log: DeviceLog) throws(QueueError) -> (used: Int, budgetSpent: Bool) {
        guard retryBlocked(backend: backend, log: log) else { return (0, false) }
        var used = 0
        while used < budget, var chain = try queue.popAvailable() {
            let length = try gather(&chain, memory: queue.memory, log: log)
            if let length, length > headerSize {
                send(length: length, backend: backend, log: log)
            } else if let length {
                log.report("transmit chain holds only a header", "\(length)-byte chain dropped")
            }
            queue.addUsed(head: chain.head, written: 0)
            used += 1
            if blocked != nil { return (used, false) }
        }
        return (used, used == budget)
    }

    /// Collects a chain's readable buffers into `pieces`: the frame's length, or nil when the
    /// chain breaks virtio-net's rules (dropped, logged once per cause).
    private func gather(_ chain: inout DescriptorChain, memory: GuestMemory, log: DeviceLog) throws(QueueError) -> Int? {
        pieces.removeAll(keepingCapacity: true)
        var length = 0
        var valid = true
        while let d = chain.next() {
            if d.isWritable {
                if valid { log.report("device-writable buffer in a transmit chain", "chain \(chain.head) dropped") }
                valid = false
                continue
            }
            guard valid, d.length > 0 else { continue }
            length += Int(d.length)
            if length > Self.maxFrame + 12 {
                log.report("frame over 64 KiB", "a transmit chain of more than \(Self.maxFrame + 12) bytes dropped")
                valid = false
                continue
            }
            guard let host = try? memory.hostPointer(d.address, length: UInt64(d.length)) else { valid = false; continue }
            pieces.append(iovec(iov_base: host, iov_len: Int(d.length)))
        }
        if let error = chain.error { throw error }
        return valid ? length : nil
    }

    private func send(length: Int, backend: any NetBackend, log: DeviceLog) {
        let sent: Bool
        do {
            sent = try pieces.withUnsafeBufferPointer { list throws(SystemError) in try backend.send(list) }
        } catch {
            // The tap refuses malformed GSO headers (EINVAL) and frames while it is down (EIO).
            log.report("backend refused a frame", "\(error); frame dropped")
            return
        }
        guard !sent else { return }
        var copy = [UInt8](repeating: 0, count: length)
        copy.withUnsafeMutableBytes { out in
            var at = 0
            for p in pieces {
                out.baseAddress!.advanced(by: at).copyMemory(from: p.iov_base!, byteCount: p.iov_len)
                at += p.iov_len
            }
        }
        blocked = copy
    }
}
