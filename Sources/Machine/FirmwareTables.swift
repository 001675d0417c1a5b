import Boot
import Devices

/// The firmware tables of the Linux board, built from where the devices were placed: the ACPI
/// tables (COM1, the virtio-mmio devices and the PCI host bridge in the DSDT; MCFG for ECAM)
/// and the e820 map. The MP table is in `loadLinux`; the PCI parts in `PCIFirmware.swift`.
extension Machine {
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
            dsdtDevices: [com1] + virtioMMIODSDTDevices() + pciDSDTDevices()
                + (powerButton != nil ? ACPIPowerButton.dsdtDevices(gsi: MemoryMap.PowerPorts.powerButtonGSI) : []),
            ecam: pciECAM())
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
}
