import Locking
import Diagnostics
import Synchronization
import Virtio

/// One receive/transmit virtqueue pair and the tap queue behind it, served by its own I/O thread
/// (or, with vhost, by its own vhost worker in the kernel).
///
/// Receive and transmit run on the pair's thread only — its doorbells and its tap queue's
/// readiness — so they need no lock between them; the lock orders them against activation,
/// reset and the control queue enabling or disabling the pair, which come from other threads.
final class NetQueuePair: Sendable {
    let index: Int
    let backend: any NetBackend
    let vhost: VhostDataPath?
    private let log: DeviceLog
    /// Frames per queue per wake-up, so that a flood one way cannot starve the other (or a
    /// reset waiting for the lock).
    static let budget = 256

    private struct Active: @unchecked Sendable {
        let rx: SplitQueue?
        let tx: SplitQueue?
        let interrupt: any VirtioInterrupt
        let features: UInt64
        let headerSize: Int
        /// Queue indexes, for interrupts and serveAgain.
        let rxIndex: Int, txIndex: Int
        /// Receive only on an enabled pair (virtio 1.2 §5.1.6.5.5: pair 0 until the driver asks
        /// for more).
        var enabled: Bool
    }
    private struct State: @unchecked Sendable {
        var active: Active?
        let receiver = NetReceiver()
        let transmitter = NetTransmitter()
    }
    private let state = Locked(State())

    init(index: Int, backend: any NetBackend, vhost: Bool, log: DeviceLog) throws {
        self.index = index
        self.backend = backend
        self.vhost = vhost ? try VhostDataPath() : nil
        self.log = log
    }

    /// DRIVER_OK: the pair's queues (nil when the driver did not set them up).
    func activate(rx: SplitQueue?, tx: SplitQueue?, rxIndex: Int, txIndex: Int, features: UInt64,
                  interrupt: any VirtioInterrupt, enabled: Bool) throws {
        let headerSize = VirtioNetHeader.size(features: features)
        try backend.setHeaderSize(headerSize)
        try backend.setGuestOffloads(features & VirtioNetFeature.guestOffloads)
        try backend.setEnabled(enabled)
        if let vhost {
            try startKernelPath(vhost, features: features, rx: rx, tx: tx)
        }
        state.withLock { s in
            s.receiver.dropPending()
            s.transmitter.dropBlocked()
            s.active = Active(rx: rx, tx: tx, interrupt: interrupt, features: features, headerSize: headerSize,
                              rxIndex: rxIndex, txIndex: txIndex, enabled: enabled)
        }
    }

    /// Hands the queues the driver set up to vhost.
    private func startKernelPath(_ vhost: VhostDataPath, features: UInt64, rx: SplitQueue?, tx: SplitQueue?) throws {
        var memory = rx?.memory
        if memory == nil { memory = tx?.memory }
        guard let memory else { return }
        try vhost.start(features: features, rx: rx, tx: tx, memory: memory, tap: backend.fd)
    }

    /// Reset: the kernel (with vhost) and then this pair forget the driver's queues.
    func reset() {
        vhost?.stop()
        state.withLock { s in
            s.active = nil
            s.receiver.dropPending()
            s.transmitter.dropBlocked()
        }
    }

    /// The control queue enabled or disabled this pair (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET).
    func setEnabled(_ enabled: Bool) throws {
        try backend.setEnabled(enabled)
        state.withLock { $0.active?.enabled = enabled }
        if enabled { receive() }
    }

    /// The driver's "used buffers" from vhost, as the transport's interrupt.
    func relayCall(queue: Int) {
        state.withLock { $0.active }?.interrupt.signalUsedBuffers(queue: queue)
    }

    /// Frames from the tap queue into the receive queue (the tap became readable, or the
    /// driver posted receive buffers).
    func receive() {
        state.withLock { s in
            guard let a = s.active, a.enabled, let queue = a.rx, !queue.isBroken else { return }
            do {
                let mergeable = a.features & VirtioNetFeature.mrgRxbuf != 0
                let (used, outcome) = try s.receiver.run(queue: queue, backend: backend, headerSize: a.headerSize,
                                                         mergeable: mergeable, budget: Self.budget, log: log)
                if used > 0 && queue.needsInterrupt() { a.interrupt.signalUsedBuffers(queue: a.rxIndex) }
                // The tap reports readiness on edges only: come back for what is left.
                if outcome == .budgetSpent { a.interrupt.serveAgain(queue: a.rxIndex) }
            } catch {
                broken(queue, error, a.interrupt)
            }
        }
    }

    /// Frames from the transmit queue to the tap queue (the driver notified, or the tap became
    /// writable again).
    func transmit() {
        state.withLock { s in
            guard let a = s.active, let queue = a.tx, !queue.isBroken else { return }
            do {
                let (used, budgetSpent) = try s.transmitter.run(queue: queue, backend: backend, headerSize: a.headerSize,
                                                                budget: Self.budget, log: log)
                if used > 0 && queue.needsInterrupt() { a.interrupt.signalUsedBuffers(queue: a.txIndex) }
                if budgetSpent { a.interrupt.serveAgain(queue: a.txIndex) }
            } catch {
                broken(queue, error, a.interrupt)
            }
        }
    }

    private func broken(_ queue: SplitQueue, _ error: any Error, _ interrupt: any VirtioInterrupt) {
        queue.markBroken()
        log.report("broken ring", "\(error); the device needs a reset")
        interrupt.deviceNeedsReset()
    }
}
