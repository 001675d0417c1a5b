import Locking
import ByteOrder
import Diagnostics
import Synchronization
import Virtio

/// virtio-net (virtio 1.2 §5.1) over a host backend, normally a tap: `pairs` receive/transmit
/// queue pairs (queues 2i and 2i + 1), then the control queue — at 2 × pairs when the driver
/// negotiated VIRTIO_NET_F_MQ, at 2 when it did not (and then uses pair 0 alone).
///
/// Each pair has its tap queue and its own I/O thread (`NetQueuePair`), or with vhost its own
/// vhost-net device whose kernel worker moves the frames; the control queue runs on pair 0's
/// thread. Apus keeps the control plane either way.
public final class VirtioNet: VirtioDevice, VirtioHostIO, VirtioKernelQueues {
    public let deviceType = VirtioDeviceID.net
    public let name: String
    public let offeredFeatures: UInt64
    /// Each pair's receive and transmit queue, then the control queue.
    public let queueMaxSizes: [UInt16]

    /// The device's MAC address.
    public let mac: [UInt8]
    private let pairs: [NetQueuePair]
    private let log: DeviceLog
    private let config: [UInt8]
    /// The driver's control state (taken on the control queue's thread, and by activate/reset).
    private struct Control: @unchecked Sendable {
        var queue: SplitQueue?
        var interrupt: (any VirtioInterrupt)?
        var features: UInt64 = 0
        var commands = NetControlQueue()
        /// Where the control queue is for the negotiated features.
        var index = 2
    }
    private let control = Locked(Control())

    static let linkUp: UInt16 = 1
    static let queueSize: UInt16 = 256, controlQueueSize: UInt16 = 64

    /// A virtio-net device on `backends`, one per queue pair (a multi-queue tap's queues); with
    /// `vhost`, each pair's queues are carried by its own vhost-net device (`/dev/vhost-net` is
    /// opened here, once per pair).
    public init(name: String = "virtio-net0", backends: [any NetBackend], mac: [UInt8], vhost: Bool = false,
                log: DeviceLog = .discard) throws {
        precondition(mac.count == 6 && !backends.isEmpty)
        self.name = name
        self.mac = mac
        self.log = log
        pairs = try backends.enumerated().map { try NetQueuePair(index: $0.offset, backend: $0.element, vhost: vhost, log: log) }
        var features = pairs[0].vhost?.offerable ?? VirtioNetFeature.offered
        if backends.count > 1 { features |= VirtioNetFeature.mq }
        // UDP segmentation needs the tap's kernel to carry it (Linux 6.2 and later).
        if backends.allSatisfy(\.carriesUSO) { features |= VirtioNetFeature.uso }
        offeredFeatures = features
        queueMaxSizes = [UInt16](repeating: Self.queueSize, count: 2 * backends.count) + [Self.controlQueueSize]
        // Config: mac[6], status, max_virtqueue_pairs, mtu (le16 each).
        config = mac + [UInt8](littleEndian: Self.linkUp) + [UInt8](littleEndian: UInt16(backends.count))
            + [UInt8](littleEndian: UInt16(clamping: backends[0].mtu ?? 1500))
    }

    /// A single-queue device on `backend`.
    public convenience init(name: String = "virtio-net0", backend: any NetBackend, mac: [UInt8], vhost: Bool = false,
                            log: DeviceLog = .discard) throws {
        try self.init(name: name, backends: [backend], mac: mac, vhost: vhost, log: log)
    }

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        readConfigBytes(config, offset: offset, into: buffer)
    }

    // MARK: Threads and host descriptors

    /// One I/O thread per pair; the control queue goes with pair 0.
    public var queueGroups: [[Int]] { pairs.indices.map { [2 * $0, 2 * $0 + 1] } }

    public func attach(to watchers: [any DescriptorWatcher]) throws {
        for (pair, watcher) in zip(pairs, watchers) {
            if let vhost = pair.vhost {
                // vhost reads the tap; Apus relays vhost's "used buffers" signals as interrupts.
                for (ring, call) in zip(VhostDataPath.rings, vhost.calls) {
                    try watcher.watchEdges(of: call.fd) { _ in
                        guard call.drain() > 0 else { return }
                        pair.relayCall(queue: 2 * pair.index + ring)
                    }
                }
            } else {
                try watcher.watchEdges(of: pair.backend.fd) { ready in
                    if ready.contains(.writable) { pair.transmit() }
                    if ready.contains(.readable) { pair.receive() }
                }
            }
        }
    }

    public var kernelQueues: [Int] { pairs[0].vhost == nil ? [] : Array(0..<2 * pairs.count) }
    public func attachDoorbells(_ fds: [Int: Int32]) {
        for pair in pairs { pair.vhost?.attachDoorbells([0: fds[2 * pair.index], 1: fds[2 * pair.index + 1]].compactMapValues { $0 }) }
    }

    // MARK: Lifecycle

    public func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {
        let multiqueue = features & VirtioNetFeature.mq != 0
        // Without MQ the driver has one pair and the control queue at 2 (virtio 1.2 §5.1.2).
        let activePairs = multiqueue ? pairs.count : 1
        let controlIndex = 2 * activePairs
        if !multiqueue && pairs.count > 1 && pairs[0].vhost != nil {
            // Queue 2 would be the control queue, but its doorbell belongs to vhost (pair 1).
            log.report("vhost multiqueue without MQ", "the driver did not negotiate VIRTIO_NET_F_MQ; the device needs a reset")
            throw VirtioNetError.multiqueueNotNegotiated
        }
        for pair in pairs {
            try activate(pair, queues: queues, live: pair.index < activePairs, features: features, interrupt: interrupt)
        }
        let controlQueue: SplitQueue? = queues.count > controlIndex ? queues[controlIndex] : nil
        setControl(Control(queue: controlQueue, interrupt: interrupt, features: features, index: controlIndex))
    }

    /// One pair's share of DRIVER_OK: its queues if the driver uses the pair, enabled if it is
    /// pair 0 (the others wait for VQ_PAIRS_SET, §5.1.6.5.5).
    private func activate(_ pair: NetQueuePair, queues: [SplitQueue?], live: Bool, features: UInt64,
                          interrupt: any VirtioInterrupt) throws {
        let rxIndex = 2 * pair.index, txIndex = rxIndex + 1
        let rx: SplitQueue? = live && rxIndex < queues.count ? queues[rxIndex] : nil
        let tx: SplitQueue? = live && txIndex < queues.count ? queues[txIndex] : nil
        try pair.activate(rx: rx, tx: tx, rxIndex: rxIndex, txIndex: txIndex, features: features,
                          interrupt: interrupt, enabled: pair.index == 0)
    }

    private func setControl(_ new: Control) {
        control.withLock { $0 = new }
    }

    public func reset() {
        // Each pair's kernel worker first: after a reset nothing touches guest memory.
        for pair in pairs { pair.reset() }
        setControl(Control())
    }

    public func processQueue(_ index: Int) {
        if index == control.withLock({ $0.index }) { return serveControl() }
        guard index / 2 < pairs.count else { return }
        if index % 2 == 0 { pairs[index / 2].receive() } else { pairs[index / 2].transmit() }
    }

    private func serveControl() {
        control.withLock { c in
            guard let queue = c.queue, let interrupt = c.interrupt else { return }
            let pairs = self.pairs, log = self.log, features = c.features, index = c.index
            var commands = c.commands
            queue.serveAvailable(queue: index, interrupt: interrupt, log: { log.report("broken ring", "\($0); the device needs a reset") }) { chain in
                commands.serve(&chain, memory: queue.memory, negotiated: features, pairs: pairs.count, effects: .init(
                    setOffloads: { offloads in
                        do {
                            for pair in pairs { try pair.backend.setGuestOffloads(offloads) }
                            return true
                        } catch {
                            log.report("offloads refused", "\(error)")
                            return false
                        }
                    },
                    enablePairs: { n in
                        do {
                            for pair in pairs { try pair.setEnabled(pair.index < n) }
                            return true
                        } catch {
                            log.report("queue pairs refused", "\(error)")
                            return false
                        }
                    }), log: log)
            }
            c.commands = commands
        }
    }
}

/// Why virtio-net refused a driver's configuration.
enum VirtioNetError: Error {
    /// A vhost device with several queue pairs met a driver without VIRTIO_NET_F_MQ.
    case multiqueueNotNegotiated
}
