import Diagnostics
import GuestMemory
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
final class DeviceLifecycle: Sendable {
    private let turn = Mutex<Void>(())
    private let epoch = Atomic<UInt64>(0)

    /// Resets the device and runs `clear` (the transport's own reset work), in a new epoch.
    func reset(_ device: any VirtioDevice, clear: () -> Void) {
        turn.withLock { _ in
            epoch.add(1, ordering: .acquiringAndReleasing)
            device.reset()
            clear()
        }
    }

    /// Starts the device if the driver still wants it: `prepare` (run under this lock) returns
    /// nil when a reset came first, else the validated queues and features or the setup error.
    /// Returns false when the device must be marked DEVICE_NEEDS_RESET.
    func activate(_ device: any VirtioDevice, interrupt: any VirtioInterrupt, log: DeviceLog,
                  prepare: () -> Result<([SplitQueue?], UInt64), QueueError>?) -> Bool {
        turn.withLock { _ in
            guard let prepared = prepare() else { return true }
            let scoped = EpochInterrupt(interrupt, epoch: epoch.load(ordering: .acquiring), current: self)
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

    init(_ base: any VirtioInterrupt, epoch: UInt64, current lifecycle: DeviceLifecycle) {
        self.base = base
        self.epoch = epoch
        self.lifecycle = lifecycle
    }

    private var live: Bool { lifecycle.current == epoch }
    func signalUsedBuffers(queue: Int) { if live { base.signalUsedBuffers(queue: queue) } }
    func signalConfigChange() { if live { base.signalConfigChange() } }
    func deviceNeedsReset() { if live { base.deviceNeedsReset() } }
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
