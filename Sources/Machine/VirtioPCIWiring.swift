import KVM
import LinuxSupport
import Locking
import PCI
import Synchronization
import Virtio

/// A virtio-pci function on the board, as the firmware tables describe it.
public struct VirtioPCIPlacement: Sendable {
    public let address: PCIAddress
    /// The IOAPIC pin its INTx line drives (MSI-X vectors have GSIs of their own).
    public let intxGSI: UInt32
    public let transport: VirtioPCI
    let doorbells: DoorbellRegistry
    /// The doorbells KVM has ioeventfds on now (they follow the BARs).
    public var registeredDoorbells: [VirtioPCI.DoorbellAssignment] { doorbells.registered.withLock { $0 } }
}

extension Machine {
    /// Installs the PCI root complex: mechanism #1 at 0xCF8, ECAM, and the BAR windows.
    func installPCIRoot() throws -> PCIRoot {
        if let pci { return pci }
        typealias P = MemoryMap.PCI
        let root = PCIRoot(mmioWindow: .init(base: P.mmioWindowBase, size: P.mmioWindowSize),
                           ioWindow: .init(base: P.ioWindowBase, size: P.ioWindowSize))
        try registerPIO(PCIConfigPorts(root: root), port: P.configPorts, length: P.configPortsLength)
        try registerMMIO(PCIECAM(root: root), address: P.ecam, length: P.ecamBuses * PCIECAM.busSize)
        try registerMMIO(PCIBarWindow(root: root, kind: .memory32), address: P.mmioWindowBase, length: P.mmioWindowSize)
        try registerPIO(PCIBarWindow(root: root, kind: .io), port: UInt16(P.ioWindowBase), length: P.ioWindowSize)
        pciAllocator = PCIResourceAllocator(root: root)
        pci = root
        return root
    }

    /// Plugs `device` into the next PCI slot behind a virtio-pci transport and wires its data
    /// path: one ioeventfd per queue doorbell (moved whenever the guest moves the BAR), its
    /// queue handlers on the device's own I/O thread, an irqfd and GSI per MSI-X vector, and a
    /// resampling irqfd on an IOAPIC pin for INTx.
    @discardableResult
    public func addVirtioPCI(_ device: any VirtioDevice, options: VirtioPCI.Options, loop: IOEventLoop? = nil) throws -> VirtioPCIPlacement {
        let root = try installPCIRoot()
        let threads = try makeDeviceThreads(for: device, firstLoop: loop)
        let log = config.log

        var queueEvents: [EventFD] = []
        let kernelQueues = (device as? any VirtioKernelQueues)?.kernelQueues ?? []
        for q in device.queueMaxSizes.indices {
            let event = try EventFD()
            if !kernelQueues.contains(q) { try threads.loop(forQueue: q).add(event) { _ in device.processQueue(q) } }
            queueEvents.append(event)
        }
        let events = queueEvents
        attachKernelDoorbells(device, events)
        let doorbells = DoorbellRegistry(vm: vm, events: events, root: root, name: device.name, log: log)

        let pin = try interrupts.allocatePin(exclusive: false)
        let resample = try EventFD()
        let wiring = try PCIInterruptWiring(router: interrupts, vectors: device.queueMaxSizes.count + 1, pin: pin, resample: resample, name: device.name, log: log)
        var allocator = pciAllocator!
        let transport = try VirtioPCI(
            device: device, memory: memory, options: options, allocator: &allocator, interrupts: wiring,
            notify: { q in events[q].signal() },
            placeDoorbells: { doorbells.place($0) }, log: self.events.device(device.name))
        pciAllocator = allocator
        transport.setInterruptLine(UInt8(pin))
        // After the guest's EOI of a level interrupt, assert again while the ISR still has bits.
        try threads.first.add(resample) { _ in if transport.intxPending { wiring.assertINTx() } }
        let address = try root.plug(transport)
        keep(doorbells)
        keep(wiring)
        let placement = VirtioPCIPlacement(address: address, intxGSI: pin, transport: transport, doorbells: doorbells)
        virtioPCIPlacements.append(placement)
        return placement
    }
}

/// A virtio-pci function's interrupts on KVM: one GSI and irqfd per MSI-X vector, whose MSI
/// route follows the guest's table; one resampling irqfd on an IOAPIC pin for INTx.
final class PCIInterruptWiring: PCIInterruptSink {
    private let router: InterruptRouter
    private let gsis: [UInt32]
    private let events: [EventFD]
    private let intx: EventFD
    private let name: String
    private let log: @Sendable (String) -> Void
    private let routeFailureLogged = Atomic<Bool>(false)

    init(router: InterruptRouter, vectors: Int, pin: UInt32, resample: EventFD, name: String, log: @escaping @Sendable (String) -> Void) throws {
        self.router = router
        var gsis: [UInt32] = [], events: [EventFD] = []
        for _ in 0..<vectors {
            let gsi = try router.allocateMSIGSI()
            gsis.append(gsi)
            events.append(try router.irqfd(gsi: gsi))
        }
        self.gsis = gsis
        self.events = events
        intx = try router.irqfd(gsi: pin, resample: resample)
        self.name = name
        self.log = log
    }

    func route(vector: Int, message: MSIXMessage?) {
        guard vector < gsis.count else { return }
        do {
            try router.setMSIRoute(gsi: gsis[vector], message.map { MSIMessage(address: $0.address, data: $0.data) })
        } catch {
            // A guest can ask for routes KVM refuses; say so once, keep running.
            if !routeFailureLogged.exchange(true, ordering: .relaxed) { log("\(name): MSI-X vector \(vector) could not be routed: \(error)") }
        }
    }

    func signal(vector: Int) {
        guard vector < events.count else { return }
        events[vector].signal()
    }

    func assertINTx() { intx.signal() }
}

/// Keeps a device's doorbell ioeventfds where its BARs are: registers the new set and removes
/// the old whenever the guest moves a BAR or toggles decoding.
final class DoorbellRegistry: Sendable {
    private let vm: VirtualMachine
    private let events: [EventFD]
    private let root: PCIRoot
    private let name: String
    private let log: @Sendable (String) -> Void
    let registered = Locked<[VirtioPCI.DoorbellAssignment]>([])
    private let failureLogged = Atomic<Bool>(false)

    init(vm: VirtualMachine, events: [EventFD], root: PCIRoot, name: String, log: @escaping @Sendable (String) -> Void) {
        self.vm = vm
        self.events = events
        self.root = root
        self.name = name
        self.log = log
    }

    func place(_ wanted: [VirtioPCI.DoorbellAssignment]) {
        registered.withLock { current in
            for old in current where !wanted.contains(old) {
                let (address, match) = Self.ioevent(old.doorbell)
                try? vm.unregisterIOEvent(events[old.queue], at: address, match: match)
            }
            var now = current.filter { wanted.contains($0) }
            for new in wanted where !current.contains(new) {
                // A doorbell outside the root's windows (a BAR the guest put elsewhere) would
                // catch writes meant for RAM or another device: leave it unregistered.
                guard inWindow(new.doorbell) else { continue }
                let (address, match) = Self.ioevent(new.doorbell)
                do {
                    try vm.registerIOEvent(events[new.queue], at: address, match: match)
                    now.append(new)
                } catch {
                    // Two BARs placed over each other: KVM refuses the duplicate. The queue still
                    // works through exits; say so once.
                    if !failureLogged.exchange(true, ordering: .relaxed) { log("\(name): doorbell for queue \(new.queue) not placed: \(error)") }
                }
            }
            current = now
        }
    }

    private func inWindow(_ doorbell: VirtioPCI.Doorbell) -> Bool {
        switch doorbell {
        case let .fastMMIO(address): root.mmioWindow.contains(address, length: 4)
        case let .pio(port), let .pioMatching(port, _): root.ioWindow.contains(UInt64(port), length: 2)
        }
    }

    static func ioevent(_ doorbell: VirtioPCI.Doorbell) -> (IOEventAddress, IOEventMatch) {
        switch doorbell {
        case let .fastMMIO(address): (.fastMMIO(address: address), .any)
        case let .pio(port): (.pio(port: port, length: 2), .any)
        case let .pioMatching(port, value): (.pio(port: port, length: 2), .value(UInt64(value)))
        }
    }
}

extension Machine {
    /// `--stats` lines for the virtio-pci functions: accesses per region that exited.
    public func pciStatisticsReport() -> String? {
        guard !virtioPCIPlacements.isEmpty else { return nil }
        var lines = ["virtio-pci accesses that exited to apus (doorbells caught by ioeventfds are not among them):"]
        for p in virtioPCIPlacements {
            let counts = p.transport.accessCounts.filter { $0.1 > 0 }.map { "\($0.0.label) \($0.1)" }
            lines.append("  \(p.address) \(p.transport.name): " + (counts.isEmpty ? "none" : counts.joined(separator: ", "))
                         + "; notifies through exits \(p.transport.notificationsThroughExits)")
        }
        return lines.joined(separator: "\n")
    }
}
