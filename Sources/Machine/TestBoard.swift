import Devices
import KVM
import LinuxSupport
import Synchronization

/// The devices bare-metal guests talk to (addresses in `MemoryMap.TestBoard`): probes that
/// answer PIO and MMIO exits in userspace, and doorbells that KVM serves with ioeventfds.
public final class TestBoard: Sendable {
    /// A doorbell: an ioeventfd registration plus an `AccessCounter` behind the same address, so
    /// that accesses which wrongly exit to userspace are counted rather than lost.
    public final class Doorbell: Sendable {
        public let name: String
        public let address: IOEventAddress
        /// The ioeventfd KVM signals.
        public let event: EventFD
        /// The datamatch it was registered with.
        public let match: IOEventMatch
        /// Accesses that reached userspace (0 when the ioeventfd works).
        public let exits: AccessCounter
        private let signalCount = Atomic<Int>(0)
        /// Signals the I/O thread drained from the eventfd (KVM coalesces back-to-back rings).
        public var signals: Int { signalCount.load(ordering: .relaxed) }

        init(name: String, address: IOEventAddress, match: IOEventMatch = .any) throws(SystemError) {
            self.name = name
            self.address = address
            self.match = match
            event = try EventFD()
            exits = AccessCounter(name: name)
        }
        func record(_ n: UInt64) { signalCount.add(Int(n), ordering: .relaxed) }
    }

    public let probePIO = ProbeDevice(name: "probe-pio")
    public let probeMMIO = ProbeDevice(name: "probe-mmio")
    public let doorbellPIO: Doorbell
    public let doorbellFast: Doorbell
    public let doorbellMatch: Doorbell
    public let doorbellMMIO: Doorbell
    public let doorbellInterrupt: Doorbell

    init() throws(SystemError) {
        typealias T = MemoryMap.TestBoard
        doorbellPIO = try Doorbell(name: "doorbell-pio", address: .pio(port: T.doorbellPort, length: 4))
        doorbellFast = try Doorbell(name: "doorbell-fast-mmio", address: .fastMMIO(address: T.doorbellFastMMIO))
        doorbellMatch = try Doorbell(name: "doorbell-mmio-match", address: .mmio(address: T.doorbellMMIOMatch, length: 4),
                                     match: .value(T.doorbellMatchValue))
        doorbellMMIO = try Doorbell(name: "doorbell-mmio", address: .mmio(address: T.doorbellMMIO, length: 4))
        doorbellInterrupt = try Doorbell(name: "doorbell-irq", address: .fastMMIO(address: T.doorbellInterrupt))
    }

    /// How the interrupt doorbell's answer reaches the guest.
    public enum InterruptDelivery: Sendable {
        /// Signal an irqfd bound to an MSI route (the virtio data path).
        case irqfd
        /// Call `KVM_SIGNAL_MSI` directly.
        case signalMSI
    }

    public var doorbells: [Doorbell] { [doorbellPIO, doorbellFast, doorbellMatch, doorbellMMIO, doorbellInterrupt] }

    /// A summary for `--stats`.
    public func report() -> String {
        var lines = ["ioeventfd doorbells (signals seen by the I/O thread / accesses that exited):"]
        for d in doorbells where d.signals > 0 || d.exits.count > 0 {
            lines.append("  \(pad(d.name, 28)) \(d.signals) / \(d.exits.count)")
        }
        return lines.joined(separator: "\n")
    }
}

extension Machine {
    /// Wires the test board into this machine. The interrupt doorbell is the whole data path in
    /// miniature: guest rings (fast MMIO, no exit) → KVM signals the ioeventfd → the I/O thread
    /// wakes → it signals an irqfd → KVM injects MSI vector 0x40 into vCPU 0.
    public func installTestBoard(interrupts: TestBoard.InterruptDelivery = .irqfd) throws -> TestBoard {
        let board = try TestBoard()
        typealias T = MemoryMap.TestBoard
        // The debug-exit port lets the guest choose apus's exit status: a test device, on the
        // bare-metal board only (a Linux guest must not be able to fake a result).
        let control = self.control
        try registerPIO(DebugExitPort { code in control.requestStop(.debugExit(code)) },
                        port: MemoryMap.Port.debugExit, length: 1)
        try registerPIO(board.probePIO, port: T.probePort, length: T.probePortLength)
        try registerMMIO(board.probeMMIO, address: T.probeMMIO, length: T.probeMMIOLength)

        let message = MSIMessage.fixed(vector: T.interruptVector, destinationAPIC: 0)
        let irq = try addMSIRoute(gsi: T.interruptGSI, message)
        let vm = self.vm
        for d in board.doorbells {
            let raisesInterrupt = d === board.doorbellInterrupt
            try addIOEvent(at: d.address, match: d.match, event: d.event) { n in
                d.record(n)
                guard raisesInterrupt else { return }
                switch interrupts {
                case .irqfd: irq.signal()
                case .signalMSI: try? vm.signalMSI(message)
                }
            }
            switch d.address {
            case let .pio(port, length): try registerPIO(d.exits, port: port, length: UInt64(length))
            case let .mmio(address, _), let .fastMMIO(address): try registerMMIO(d.exits, address: address, length: 0x100)
            }
        }
        return board
    }
}
