import KVM
import LinuxSupport
import Locking

/// Owns the board's interrupt wiring: which IOAPIC pins and GSIs are taken, the GSI routing
/// table, and the irqfds that raise them. Safe to call from any thread at any time — MSI-X
/// table writes arrive on vCPU threads while the guest runs.
///
/// - IOAPIC pins 16–23 go to devices (the ISA range 0–15 stays legacy). virtio-mmio takes one
///   pin each; PCI INTx pins may be shared, as on real boards, when there are more devices.
/// - GSIs from `firstMSIGSI` carry MSI routes, one per MSI-X vector.
///
/// Masking is done in userspace (a masked vector is never signalled, its pending bit is set
/// instead), so an irqfd stays registered for the machine's lifetime and only its route
/// changes: no irqfd is ever removed while a route points at it, the ordering that has
/// crashed host kernels elsewhere (cloud-hypervisor #3827, #6348).
public final class InterruptRouter: Sendable {
    public static let firstDevicePin: UInt32 = 16
    public static let pinCount: UInt32 = 8
    /// GSIs 24–31 stay free for fixed board wiring (the test board's interrupt doorbell).
    public static let firstMSIGSI: UInt32 = 32

    private struct State: Sendable {
        var table = GSIRoutingTable.withDefaultIRQChipRoutes()
        var nextPin: UInt32 = 0
        var nextGSI = InterruptRouter.firstMSIGSI
    }

    private let vm: VirtualMachine
    private let state = Locked(State())

    init(vm: VirtualMachine) { self.vm = vm }

    /// The next IOAPIC pin for a device. `exclusive` pins (virtio-mmio's edge interrupts) must
    /// not be shared: running out of them is an error; shared (PCI INTx) pins wrap around.
    public func allocatePin(exclusive: Bool) throws(MachineError) -> UInt32 {
        try state.withLock { s throws(MachineError) in
            if exclusive && s.nextPin >= Self.pinCount {
                throw MachineError("out of interrupt pins: the IOAPIC has \(Self.pinCount) for devices (16–23)")
            }
            defer { s.nextPin += 1 }
            return Self.firstDevicePin + s.nextPin % Self.pinCount
        }
    }

    /// A fresh GSI for an MSI route (unrouted until `setMSIRoute`).
    public func allocateMSIGSI() throws(MachineError) -> UInt32 {
        try state.withLock { s throws(MachineError) in
            guard Int(s.nextGSI - Self.firstMSIGSI) < GSIRoutingTable.capacity - s.table.routes.count else {
                throw MachineError("out of MSI routes: KVM's routing table holds \(GSIRoutingTable.capacity)")
            }
            defer { s.nextGSI += 1 }
            return s.nextGSI
        }
    }

    /// Routes `gsi` to `message`, or removes its route (nil): signals then go nowhere.
    public func setMSIRoute(gsi: UInt32, _ message: MSIMessage?) throws(KVMError) {
        try state.withLock { s throws(KVMError) in
            let before = s.table
            if let message { s.table.setMSI(gsi: gsi, message) } else { s.table.remove(gsi: gsi) }
            guard s.table != before else { return }
            do throws(KVMError) {
                try vm.setGSIRouting(s.table)
            } catch {
                s.table = before
                throw error
            }
        }
    }

    /// An eventfd that raises `gsi` when signalled (with `resample`: held as a level until
    /// the guest's EOI, then `resample` is signalled).
    public func irqfd(gsi: UInt32, resample: EventFD? = nil) throws -> EventFD {
        let event = try EventFD()
        try vm.registerIRQFD(event, gsi: gsi, resample: resample)
        return event
    }
}
