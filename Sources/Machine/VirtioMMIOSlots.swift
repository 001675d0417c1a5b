import Boot
import Devices
import KVM
import LinuxSupport
import Virtio

/// A virtio-mmio device placed on the board, as the firmware tables describe it.
public struct VirtioMMIOPlacement: Sendable {
    public let base: UInt64
    public let gsi: UInt32
    public let name: String
    /// The transport, for inspection (e.g. `notificationsThroughExits`).
    public let transport: VirtioMMIO
}

extension Machine {
    /// Puts `device` behind a virtio-mmio window in the next free slot and wires its data path:
    /// one ioeventfd per queue on QueueNotify (datamatch = queue index, since all queues share
    /// the register) whose signals run the device's queue handler on the device's I/O thread,
    /// and one irqfd on the slot's IOAPIC pin for its interrupts.
    @discardableResult
    public func addVirtioMMIO(_ device: any VirtioDevice, version: UInt32 = 2, loop: IOEventLoop? = nil) throws -> VirtioMMIOPlacement {
        typealias S = MemoryMap.VirtioMMIOSlots
        let slot = virtioMMIOPlacements.count
        guard slot < S.count else { throw MachineError("at most \(S.count) virtio-mmio devices fit on this board") }
        let base = S.base + UInt64(slot) * S.slotSize
        let gsi = try interrupts.allocatePin(exclusive: true)
        let threads = try makeDeviceThreads(for: device, firstLoop: loop)

        let irq = try interrupts.irqfd(gsi: gsi)
        keep(irq)
        var queueEvents: [EventFD] = []
        let kernelQueues = (device as? any VirtioKernelQueues)?.kernelQueues ?? []
        for q in device.queueMaxSizes.indices {
            let event = try EventFD()
            try vm.registerIOEvent(event, at: .mmio(address: base + VirtioMMIO.Register.queueNotify.rawValue, length: 4), match: .value(UInt64(q)))
            if !kernelQueues.contains(q) { try threads.loop(forQueue: q).add(event) { _ in device.processQueue(q) } }
            keep(event)
            queueEvents.append(event)
        }
        let events = queueEvents
        attachKernelDoorbells(device, events)
        let transport = VirtioMMIO(
            device: device, memory: memory, version: version,
            raiseInterrupt: { irq.signal() },
            // Only without a working ioeventfd does a notify reach us; pass it to the I/O thread.
            notify: { q in events[q].signal() },
            log: self.events.device(device.name))
        try registerMMIO(transport, address: base, length: VirtioMMIO.windowSize)
        let placement = VirtioMMIOPlacement(base: base, gsi: gsi, name: device.name, transport: transport)
        virtioMMIOPlacements.append(placement)
        return placement
    }

    /// The DSDT entries for the virtio-mmio devices (`LNRO0005`, the ID Linux's virtio_mmio
    /// driver matches over ACPI, for both versions).
    func virtioMMIODSDTDevices() -> [[UInt8]] {
        virtioMMIOPlacements.enumerated().map { i, p in
            AML.device("VR\(i < 10 ? "0" : "")\(i)", [
                AML.name("_HID", AML.string("LNRO0005")),
                AML.name("_UID", AML.integer(UInt64(i))),
                AML.name("_CRS", AML.resourceTemplate([
                    AML.memory32Fixed(base: UInt32(p.base), length: UInt32(VirtioMMIO.windowSize)),
                    AML.interrupt(p.gsi),
                ])),
            ])
        }
    }

    /// `virtio_mmio.device=` words for kernels that discover devices on the command line.
    func virtioMMIOCommandLine() -> String {
        virtioMMIOPlacements.map { " virtio_mmio.device=0x\(String(VirtioMMIO.windowSize, radix: 16))@0x\(String($0.base, radix: 16)):\($0.gsi)" }.joined()
    }
}
