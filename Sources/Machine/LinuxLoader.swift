import Boot
import CKVM
import Devices
import GuestMemory
import KVM

/// What to boot: a bzImage, an optional initrd and the kernel command line.
public struct LinuxBoot: Sendable {
    public var kernel: [UInt8]
    public var initrd: [UInt8]
    public var commandLine: String
    /// Describe the machine with ACPI tables (on) or only an MP table (off).
    public var acpi: Bool

    public init(kernel: [UInt8], initrd: [UInt8] = [], commandLine: String, acpi: Bool = true) {
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
        self.acpi = acpi
    }
}

extension MemoryMap {
    /// ACPI tables (the RSDP first) and the MP table live in the old BIOS area, marked reserved.
    public static let acpiTables: UInt64 = 0xE_0000
    public static let mpTable: UInt64 = 0xF_0000
    public static let biosAreaEnd: UInt64 = 0x10_0000
    /// Top of conventional memory; the EBDA would start here on a PC.
    public static let conventionalEnd: UInt64 = 0x9_FC00

    public enum PowerPorts {
        /// `AcpiPowerDevice`: sleep control, sleep status, reset.
        public static let base: UInt16 = 0x600
        /// The i8042 command/status port.
        public static let i8042Command: UInt16 = 0x64
    }
}

extension Machine {
    /// Loads Linux through the 64-bit boot protocol: validates the image and the layout before
    /// writing anything, then writes kernel, initrd, command line, firmware tables, page tables
    /// and the zero page, and points vCPU 0 at the 64-bit entry with RSI = the zero page.
    /// The other vCPUs wait for INIT/SIPI from the guest, as on real hardware.
    @discardableResult
    public func loadLinux(_ boot: LinuxBoot) throws -> LinuxLayout {
        // Kernels without ACPI can still find virtio-mmio devices on the command line.
        var boot = boot
        if !boot.acpi { boot.commandLine += virtioMMIOCommandLine() }
        let image = try BzImage(boot.kernel)
        let lowRAMEnd = memory.regions.first { $0.start.rawValue == 0 }.map { $0.size } ?? 0
        let layout = try LinuxLayout(image: image, initrdSize: boot.initrd.count,
                                     commandLineLength: boot.commandLine.utf8.count, lowRAMEnd: lowRAMEnd)
        guard UInt64(boot.commandLine.utf8.count) < MemoryMap.commandLineMax else {
            throw BootError.commandLineTooLong(length: boot.commandLine.utf8.count, limit: Int(MemoryMap.commandLineMax) - 1)
        }
        try installPowerDevices()

        try memory.write(Array(image.kernel), to: GuestAddress(layout.kernelAddress))
        if !boot.initrd.isEmpty { try memory.write(boot.initrd, to: GuestAddress(layout.initrdAddress)) }
        try memory.write(Array(boot.commandLine.utf8) + [0], to: GuestAddress(MemoryMap.commandLine))
        try LongMode.writeTables(into: memory)

        var params = BootParams(image: image)
        params.setCommandLine(address: UInt32(MemoryMap.commandLine))
        if !boot.initrd.isEmpty { params.setInitrd(address: UInt32(layout.initrdAddress), size: UInt32(boot.initrd.count)) }
        params.setMemoryMap(e820Map())
        try memory.write(MPTable.build(base: MemoryMap.mpTable, cpus: vcpus.count,
                                       ioapicAddress: UInt32(MemoryMap.ioapic), lapicAddress: UInt32(MemoryMap.lapic),
                                       pciInterrupts: pciMPInterrupts()),
                         to: GuestAddress(MemoryMap.mpTable))
        if boot.acpi {
            let tables = acpiTables()
            try memory.write(tables.bytes, to: GuestAddress(tables.base))
            params.setACPIRSDP(tables.rsdpAddress)
        }
        try memory.write(params.bytes, to: GuestAddress(MemoryMap.zeroPage))
        try LongMode.enter(vcpus[0], entry: layout.entryPoint, stack: MemoryMap.bareStackTop, rsi: MemoryMap.zeroPage)
        return layout
    }

    /// The ACPI tables describing this machine.
    ///
    /// COM1 must be in the DSDT: with hardware-reduced ACPI Linux has no legacy PIC, so it
    /// creates no ISA IRQ mappings of its own, and the 8250 driver only gets IRQ 4 through the
    /// PNP0501 device's `_CRS`. Without it the port's open fails and userspace has no console.
    func acpiTables() -> ACPITables {
        let base = MemoryMap.PowerPorts.base
        let com1 = AML.device("COM1", [
            AML.name("_HID", AML.eisaID("PNP0501")),
            AML.name("_UID", AML.integer(1)),
            AML.name("_CRS", AML.resourceTemplate([
                AML.io(port: MemoryMap.Port.com1, length: 8),
                AML.interrupt(MemoryMap.Port.com1IRQ),
            ])),
        ])
        return ACPITables(
            base: MemoryMap.acpiTables, cpus: vcpus.count,
            ioapicAddress: UInt32(MemoryMap.ioapic), lapicAddress: UInt32(MemoryMap.lapic),
            power: .init(sleepControl: base + UInt16(AcpiPowerDevice.sleepControl),
                         sleepStatus: base + UInt16(AcpiPowerDevice.sleepStatus),
                         reset: base + UInt16(AcpiPowerDevice.reset),
                         resetValue: AcpiPowerDevice.resetValue),
            dsdtDevices: [com1] + virtioMMIODSDTDevices() + pciDSDTDevices(), ecam: pciECAM())
    }

    /// RAM below the EBDA, the reserved BIOS area, RAM from 1 MiB to the hole, RAM above 4 GiB.
    func e820Map() -> [E820Entry] {
        var map = [E820Entry(address: 0, size: MemoryMap.conventionalEnd, kind: .ram),
                   E820Entry(address: MemoryMap.conventionalEnd, size: 0xA_0000 - MemoryMap.conventionalEnd, kind: .reserved),
                   E820Entry(address: MemoryMap.acpiTables, size: MemoryMap.biosAreaEnd - MemoryMap.acpiTables, kind: .reserved)]
        // ECAM is MMIO, but Linux accepts an MCFG region only if the firmware reserved it.
        if pci != nil {
            map.append(E820Entry(address: MemoryMap.PCI.ecam, size: MemoryMap.PCI.ecamBuses << 20, kind: .reserved))
        }
        for region in memory.regions {
            let start = max(region.start.rawValue, MemoryMap.biosAreaEnd)
            let end = region.start.rawValue + region.size
            if end > start { map.append(E820Entry(address: start, size: end - start, kind: .ram)) }
        }
        return map
    }

    /// The ACPI power registers and the i8042 reset port.
    func installPowerDevices() throws {
        let control = self.control
        try registerPIO(AcpiPowerDevice(onPowerOff: { control.requestStop(.powerOff) },
                                        onReset: { control.requestStop(.reboot) }),
                        port: MemoryMap.PowerPorts.base, length: AcpiPowerDevice.length)
        try registerPIO(I8042ResetPort(onReset: { control.requestStop(.reboot) }),
                        port: MemoryMap.PowerPorts.i8042Command, length: 1)
    }
}
