import Locking
import GuestMemory
import LinuxSupport
import Synchronization
import Virtio

/// virtio-net's receive and transmit queues carried by the kernel (vhost-net): at activation
/// Apus tells vhost where guest RAM and the rings are, gives it each queue's doorbell eventfd
/// (kick) and an eventfd to signal (call), and attaches the tap; from then on frames move
/// between the rings and the tap inside the kernel. Apus keeps the control queue and relays
/// each call to the transport's interrupt (for virtio-mmio that must set InterruptStatus; with
/// MSI-X it is one eventfd read and one irqfd write on the device's I/O thread).
final class VhostDataPath: Sendable {
    /// The virtio features that change what vhost reads and writes in the rings.
    static let ringFeatures = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc | VirtioFeature.ringEventIdx
        | VirtioNetFeature.mrgRxbuf
    /// Receive and transmit: vhost-net's rings 0 and 1.
    static let rings = [0, 1]

    let vhost: VhostNet
    /// The eventfd vhost signals per queue when it has used buffers.
    let calls: [EventFD]
    private let doorbells = Locked<[Int: Int32]>([:])

    init() throws {
        vhost = try VhostNet()
        calls = try Self.rings.map { _ in try EventFD() }
    }

    /// What the device may offer: every virtio-net feature, but of the ring features only those
    /// this kernel's vhost carries.
    var offerable: UInt64 { VirtioNetFeature.offered & ~(Self.ringFeatures & ~vhost.features) }

    /// The pair's doorbell eventfds, by ring (0 receive, 1 transmit).
    func attachDoorbells(_ fds: [Int: Int32]) { doorbells.withLock { $0 = fds } }

    /// Hands the pair's queues to the kernel on `tap` (one vhost device per pair: its rings 0
    /// and 1 are the pair's receive and transmit queues).
    func start(features: UInt64, rx: SplitQueue?, tx: SplitQueue?, memory: GuestMemory, tap: Int32) throws {
        let kicks = doorbells.withLock { $0 }
        try vhost.setFeatures(features & Self.ringFeatures & vhost.features)
        try vhost.setMemoryTable(memory.regions.map { (guest: $0.start.rawValue, size: $0.size, host: UInt64(UInt(bitPattern: $0.host))) })
        for (ring, queue) in [rx, tx].enumerated() {
            guard let queue, let kick = kicks[ring] else { continue }
            let size = UInt64(queue.size)
            let extra: UInt64 = features & VirtioFeature.ringEventIdx != 0 ? 2 : 0
            // The areas were validated when the queue was built: these cannot fail.
            let descriptors = try memory.hostPointer(queue.descriptorTable, length: 16 * size)
            let available = try memory.hostPointer(queue.availRing, length: 4 + 2 * size + extra)
            let used = try memory.hostPointer(queue.usedRing, length: 4 + 8 * size + extra)
            func address(_ p: UnsafeMutableRawPointer) -> UInt64 { UInt64(UInt(bitPattern: p)) }
            try vhost.setRing(UInt32(ring), size: queue.size, base: queue.nextAvail,
                              descriptors: address(descriptors), available: address(available), used: address(used))
            try vhost.setEvents(UInt32(ring), kick: kick, call: calls[ring].fd)
            try vhost.setBackend(UInt32(ring), tap)
        }
    }

    /// Takes both queues back from the kernel; returns once it no longer touches guest memory.
    func stop() {
        for ring in Self.rings { try? vhost.setBackend(UInt32(ring), nil) }
    }
}
