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
        // Only ACPI tells the guest of the power button: without them there is none to press.
        if !boot.acpi { powerButton = nil }
        let image = try BzImage(boot.kernel)
        let lowRAMEnd = memory.regions.first { $0.start.rawValue == 0 }.map { $0.size } ?? 0
        let layout = try LinuxLayout(image: image, initrdSize: boot.initrd.count,
                                     commandLineLength: boot.commandLine.utf8.count, lowRAMEnd: lowRAMEnd)
        guard UInt64(boot.commandLine.utf8.count) < MemoryMap.commandLineMax else {
            throw BootError.commandLineTooLong(length: boot.commandLine.utf8.count, limit: Int(MemoryMap.commandLineMax) - 1)
        }

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
}
