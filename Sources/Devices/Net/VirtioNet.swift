import ByteOrder
import Diagnostics
import Synchronization
import Virtio

/// virtio-net (virtio 1.2 §5.1) over a host backend, normally a tap: queue 0 receives, queue 1
/// transmits, queue 2 is the control queue.
///
/// Two data paths. In Apus (the default), everything runs on the device's own I/O thread — the
/// queue doorbells and the tap's readiness alike — so the receive and transmit paths need no
/// locks between them; the lock here only orders them against `activate` and `reset`, which
/// come from a vCPU thread. With vhost, the kernel serves queues 0 and 1 (`VhostDataPath`) and
/// Apus only the control queue and the interrupts.
public final class VirtioNet: VirtioDevice, VirtioHostIO, VirtioKernelQueues {
    public let deviceType = VirtioDeviceID.net
    public let name: String
    public let offeredFeatures: UInt64
    /// Receive, transmit, control.
    public let queueMaxSizes: [UInt16] = [256, 256, 64]
    static let rxQueue = 0, txQueue = 1, controlQueue = 2
    /// Frames per queue per wake-up, so that a flood on one direction cannot starve the other
    /// (or a reset waiting for the lock).
    static let budget = 256

    /// The device's MAC address.
    public let mac: [UInt8]
    private let backend: any NetBackend
    private let log: DeviceLog
    private let config: [UInt8]

    private struct Active: @unchecked Sendable {
        let queues: [SplitQueue?]
        let interrupt: any VirtioInterrupt
        let features: UInt64
        let headerSize: Int
        var control = NetControlQueue()
    }
    /// The live driver state, and the paths' host-side state, behind one lock.
    private struct State: @unchecked Sendable {
        var active: Active?
        let receiver = NetReceiver()
        let transmitter = NetTransmitter()
    }
    private let state = Mutex(State())

    /// The virtio-net config layout: mac[6], status (le16), max_virtqueue_pairs (le16), mtu (le16).
    static let linkUp: UInt16 = 1

    private let vhost: VhostDataPath?

    /// A virtio-net device on `backend`; with `vhost`, the kernel's vhost-net carries the
    /// receive and transmit queues (`/dev/vhost-net` is opened here).
    public init(name: String = "virtio-net0", backend: any NetBackend, mac: [UInt8], vhost: Bool = false,
                log: DeviceLog = .discard) throws {
        precondition(mac.count == 6)
        self.vhost = vhost ? try VhostDataPath() : nil
        offeredFeatures = self.vhost?.offerable ?? VirtioNetFeature.offered
        self.name = name
        self.backend = backend
        self.mac = mac
        self.log = log
        var config = mac
        config += [UInt8](littleEndian: Self.linkUp)
        config += [UInt8](littleEndian: UInt16(1))
        config += [UInt8](littleEndian: UInt16(clamping: backend.mtu ?? 1500))
        self.config = config
    }

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        readConfigBytes(config, offset: offset, into: buffer)
    }

    public func attach(to watcher: any DescriptorWatcher) throws {
        if let vhost {
            // vhost reads the tap; Apus relays vhost's "used buffers" signals as interrupts.
            for (q, call) in zip(VhostDataPath.queues, vhost.calls) {
                try watcher.watchEdges(of: call.fd) { [self] _ in
                    guard call.drain() > 0 else { return }
                    state.withLock { $0.active }?.interrupt.signalUsedBuffers(queue: q)
                }
            }
            return
        }
        try watcher.watchEdges(of: backend.fd) { [self] ready in
            if ready.contains(.writable) { transmit() }
            if ready.contains(.readable) { receive() }
        }
    }

    public var kernelQueues: [Int] { vhost == nil ? [] : VhostDataPath.queues }
    public func attachDoorbells(_ fds: [Int: Int32]) { vhost?.attachDoorbells(fds) }

    public func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {
        let headerSize = VirtioNetHeader.size(features: features)
        try backend.setHeaderSize(headerSize)
        try backend.setGuestOffloads(features & VirtioNetFeature.guestOffloads)
        if let vhost, let memory = queues.compactMap({ $0 }).first?.memory {
            try vhost.start(features: features, queues: queues, memory: memory, tap: backend.fd)
        }
        state.withLock { s in
            s.receiver.dropPending()
            s.transmitter.dropBlocked()
            s.active = Active(queues: queues, interrupt: interrupt, features: features, headerSize: headerSize)
        }
    }

    public func reset() {
        // Before the state goes: after reset the device, kernel included, leaves guest memory alone.
        vhost?.stop()
        state.withLock { s in
            s.active = nil
            s.receiver.dropPending()
            s.transmitter.dropBlocked()
        }
    }

    public func processQueue(_ index: Int) {
        switch index {
        case Self.rxQueue: receive()
        case Self.txQueue: transmit()
        case Self.controlQueue: serveControl()
        default: break
        }
    }

    /// Frames from the backend into the receive queue (the tap became readable, or the driver
    /// posted receive buffers).
    private func receive() {
        state.withLock { s in
            guard let a = s.active, let queue = a.queues[Self.rxQueue], !queue.isBroken else { return }
            do {
                let mergeable = a.features & VirtioNetFeature.mrgRxbuf != 0
                let (used, outcome) = try s.receiver.run(queue: queue, backend: backend, headerSize: a.headerSize,
                                                         mergeable: mergeable, budget: Self.budget, log: log)
                if used > 0 && queue.needsInterrupt() { a.interrupt.signalUsedBuffers(queue: Self.rxQueue) }
                // The tap reports readiness on edges only: come back for what is left.
                if outcome == .budgetSpent { a.interrupt.serveAgain(queue: Self.rxQueue) }
            } catch {
                broken(queue, error, a.interrupt)
            }
        }
    }

    /// Frames from the transmit queue to the backend (the driver notified, or the backend
    /// became writable again).
    private func transmit() {
        state.withLock { s in
            guard let a = s.active, let queue = a.queues[Self.txQueue], !queue.isBroken else { return }
            do {
                let (used, budgetSpent) = try s.transmitter.run(queue: queue, backend: backend, headerSize: a.headerSize,
                                                                budget: Self.budget, log: log)
                if used > 0 && queue.needsInterrupt() { a.interrupt.signalUsedBuffers(queue: Self.txQueue) }
                if budgetSpent { a.interrupt.serveAgain(queue: Self.txQueue) }
            } catch {
                broken(queue, error, a.interrupt)
            }
        }
    }

    private func serveControl() {
        state.withLock { s in
            guard var a = s.active, let queue = a.queues.count > Self.controlQueue ? a.queues[Self.controlQueue] : nil else { return }
            let backend = self.backend, log = self.log
            queue.serveAvailable(queue: Self.controlQueue, interrupt: a.interrupt, log: { self.log.report("broken ring", "\($0); the device needs a reset") }) { chain in
                a.control.serve(&chain, memory: queue.memory, negotiated: a.features, setOffloads: { offloads in
                    do { try backend.setGuestOffloads(offloads); return true } catch {
                        log.report("offloads refused", "\(error)")
                        return false
                    }
                }, log: log)
            }
            s.active = a
        }
    }

    private func broken(_ queue: SplitQueue, _ error: any Error, _ interrupt: any VirtioInterrupt) {
        queue.markBroken()
        log.report("broken ring", "\(error); the device needs a reset")
        interrupt.deviceNeedsReset()
    }
}
