import Boot
import PCI

extension Machine {
    /// The DSDT's PCI host bridge (`PNP0A08`, PCI Express, compatible with `PNP0A03`) with the
    /// windows it forwards in `_CRS` and the INTx routing of each slot in `_PRT`, and a
    /// motherboard resource (`PNP0C02`) reserving ECAM, which Linux wants before it trusts MCFG.
    func pciDSDTDevices() -> [[UInt8]] {
        guard pci != nil else { return [] }
        typealias P = MemoryMap.PCI
        let ramEnd = memory.regions.map { $0.start.rawValue + $0.size }.max() ?? 0
        let high = P.mmio64Window(ramEnd: ramEnd)
        let ioEnd = UInt16(P.ioWindowBase + P.ioWindowSize - 1)
        let windows = AML.resourceTemplate([
            AML.wordBusNumber(first: 0, last: UInt16(P.ecamBuses - 1)),
            AML.io(port: P.configPorts, length: UInt8(P.configPortsLength)),
            // Every port but the config mechanism's goes down to PCI, as on a PC: the legacy
            // devices answer their ports, BARs go in the upper part.
            AML.wordIO(min: 0x0000, max: P.configPorts - 1),
            AML.wordIO(min: P.configPorts + UInt16(P.configPortsLength), max: ioEnd),
            AML.dwordMemory(base: UInt32(P.mmioWindowBase), size: UInt32(P.mmioWindowSize)),
            AML.qwordMemory(base: high.base, size: high.size),
        ])
        let routes = virtioPCIPlacements.map { AML.pciRoute(slot: $0.address.device, pin: 0, gsi: $0.intxGSI) }
        let bridge = AML.device("PCI0", [
            AML.name("_HID", AML.eisaID("PNP0A08")),
            AML.name("_CID", AML.eisaID("PNP0A03")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_SEG", AML.integer(0)),
            AML.name("_BBN", AML.integer(0)),
            AML.name("_ADR", AML.integer(0)),
            AML.name("_CRS", windows),
            AML.name("_PRT", AML.package(routes)),
        ])
        let ecam = AML.device("MCFG", [
            AML.name("_HID", AML.eisaID("PNP0C02")),
            AML.name("_UID", AML.integer(1)),
            AML.name("_CRS", AML.resourceTemplate([
                AML.memory32Fixed(base: UInt32(P.ecam), length: UInt32(P.ecamBuses * PCIECAM.busSize)),
            ])),
        ])
        return [bridge, ecam]
    }

    /// The MCFG entry, when there is a PCI root.
    func pciECAM() -> ACPITables.ECAM? {
        pci == nil ? nil : .init(base: MemoryMap.PCI.ecam, firstBus: 0, lastBus: UInt8(MemoryMap.PCI.ecamBuses - 1))
    }

    /// INTx wiring for the MP table (`--acpi off`): slot, pin INTA#, IOAPIC pin.
    func pciMPInterrupts() -> [MPTable.PCIInterrupt] {
        virtioPCIPlacements.map { MPTable.PCIInterrupt(device: $0.address.device, pin: 0, ioapicPin: UInt8($0.intxGSI)) }
    }
}
