import Diagnostics
import GuestMemory
import Locking
import Synchronization

/// Serializes a device's resets and activations, and makes sure nothing from before a reset
/// reaches the device's state after it.
///
/// A status write is decoded under the transport's register lock, but resetting or starting
/// the device happens outside it (the device takes its own locks, and may wait for its I/O
/// thread). Two vCPUs can write the status at once — a reset racing DRIVER_OK — so the two
/// steps take turns here, and an activation re-checks, under this lock, that the driver did not
/// reset the device since it asked. Each activation hands the device an interrupt tied to the
/// current epoch; a reset starts a new epoch, so a late "needs reset" or interrupt from the old
/// activation (an I/O thread finishing a batch) is dropped instead of landing in the fresh state.
///
/// The epoch must move in the same critical section as the register state: the transport calls
/// `advance` under its state lock when a status write resets it, and marks DEVICE_NEEDS_RESET
/// only under that lock after checking the epoch (`needsReset` below), so no "needs reset" can
/// slip in between the fresh state and the new epoch.
final class DeviceLifecycle: Sendable {
    private let turn = Locked<Void>(())
    private let epoch = Atomic<UInt64>(0)

    /// Starts a new epoch. Call under the transport's state lock, as the status write resets it.
    func advance() { epoch.add(1, ordering: .acquiringAndReleasing) }

    /// Resets the device and runs `clear` (the transport's own reset work).
    func reset(_ device: any VirtioDevice, clear: () -> Void) {
        turn.withLock { _ in
            device.reset()
            clear()
        }
    }

    /// Starts the device if the driver still wants it: `prepare` (run under this lock) returns
    /// nil when a reset came first, else the validated queues and features or the setup error.
    /// Returns false when the device must be marked DEVICE_NEEDS_RESET.
    /// `needsReset(epoch)` must set DEVICE_NEEDS_RESET (and interrupt) only if `epoch` is still
    /// current, checked under the transport's state lock.
    func activate(_ device: any VirtioDevice, interrupt: any VirtioInterrupt, log: DeviceLog,
                  needsReset: @escaping @Sendable (UInt64) -> Void,
                  prepare: () -> (Result<([SplitQueue?], UInt64), QueueError>, UInt64)?) -> Bool {
        turn.withLock { _ in
            guard let (prepared, epoch) = prepare() else { return true }
            let scoped = EpochInterrupt(interrupt, epoch: epoch, current: self, needsReset: needsReset)
            return startDevice(device, prepared, interrupt: scoped, log: log)
        }
    }

    var current: UInt64 { epoch.load(ordering: .acquiring) }
}

/// A device's interrupt for one activation: silent once the device was reset.
private final class EpochInterrupt: VirtioInterrupt {
    let base: any VirtioInterrupt
    let epoch: UInt64
    let lifecycle: DeviceLifecycle
    let needsReset: @Sendable (UInt64) -> Void

    init(_ base: any VirtioInterrupt, epoch: UInt64, current lifecycle: DeviceLifecycle,
         needsReset: @escaping @Sendable (UInt64) -> Void) {
        self.base = base
        self.epoch = epoch
        self.lifecycle = lifecycle
        self.needsReset = needsReset
    }

    // A used-buffer or config interrupt that slips past this check just after a reset is
    // harmless (a spurious interrupt); DEVICE_NEEDS_RESET is not, so it is checked under the lock.
    private var live: Bool { lifecycle.current == epoch }
    func signalUsedBuffers(queue: Int) { if live { base.signalUsedBuffers(queue: queue) } }
    func signalConfigChange() { if live { base.signalConfigChange() } }
    func deviceNeedsReset() { needsReset(epoch) }
    func serveAgain(queue: Int) { if live { base.serveAgain(queue: queue) } }
}

/// Validates the driver's queues and starts the device; false (after logging) when the setup
/// is broken or the device refuses it, and the transport must set DEVICE_NEEDS_RESET.
func startDevice(_ device: any VirtioDevice, _ prepared: Result<([SplitQueue?], UInt64), QueueError>,
                 interrupt: any VirtioInterrupt, log: DeviceLog) -> Bool {
    switch prepared {
    case let .failure(error):
        log.report("refused DRIVER_OK", "refusing DRIVER_OK: \(error)")
        return false
    case let .success((queues, features)):
        do {
            try device.activate(features: features, queues: queues, interrupt: interrupt)
            return true
        } catch {
            log.report("activation failed", "activation failed: \(error)")
            return false
        }
    }
}
