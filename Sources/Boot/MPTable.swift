/// An Intel MultiProcessor Specification 1.4 table: the fallback description of CPUs and the
/// IOAPIC for kernels booted without ACPI (`--acpi off`). Kernels built without
/// `CONFIG_X86_MPPARSE` ignore it and run on one CPU.
public enum MPTable {
    /// The configuration table header is 44 bytes (MP spec 1.4, table 4-2); the entry count
    /// sits at offset 34, after the OEM table pointer (28) and its size (32).
    static let headerLength = 44
    static let entryCountOffset = 34

    /// A PCI interrupt line: device `device` on bus 0, pin `pin` (0 = INTA#) to an IOAPIC pin.
    public struct PCIInterrupt: Sendable, Equatable {
        public var device: UInt8, pin: UInt8, ioapicPin: UInt8
        public init(device: UInt8, pin: UInt8, ioapicPin: UInt8) { self.device = device; self.pin = pin; self.ioapicPin = ioapicPin }
    }

    /// The floating pointer then the configuration table, laid out from `base` (16-byte aligned,
    /// inside 0xF0000–0xFFFFF where Linux scans). With `pciInterrupts`, PCI bus 0 and its
    /// level-triggered, active-low interrupt lines are listed too. A PCI bus's MP bus ID must be
    /// its bus number (Linux looks PCI interrupts up by bus number), so ISA moves to ID 1 then.
    public static func build(base: UInt64, cpus: Int, ioapicAddress: UInt32, lapicAddress: UInt32,
                             pciInterrupts: [PCIInterrupt] = []) -> [UInt8] {
        let tableAddress = base + 16
        var t = ByteWriter()
        t.append(ascii: "PCMP", width: 4)
        t.append(le: UInt16(0))                // base table length, below
        t.append(4)                            // spec revision 1.4
        t.append(0)                            // checksum, below
        t.append(ascii: "APUS", width: 8)
        t.append(ascii: "APUSVMM", width: 12)
        t.append(le: UInt32(0))                // OEM table pointer (none)
        t.append(le: UInt16(0))                // OEM table size
        t.append(le: UInt16(0))                // entry count, below
        t.append(le: lapicAddress)
        t.append(le: UInt16(0)); t.append(0); t.append(0)  // extended length, checksum, reserved
        assert(t.count == headerLength)
        var entries = 0
        let ioapicID = UInt8(cpus)
        for id in 0..<cpus {                    // processor: APIC ID, version, enabled (+ BSP)
            t.append([0, UInt8(id), 0x14, UInt8(id == 0 ? 0x03 : 0x01)])
            t.append(le: UInt32(0x600))        // CPU signature: family 6
            t.append(le: UInt32(0x201))        // features: FPU, APIC
            t.append([UInt8](repeating: 0, count: 8))
            entries += 1
        }
        let pciBus: UInt8 = 0
        let isaBus: UInt8 = pciInterrupts.isEmpty ? 0 : 1
        if !pciInterrupts.isEmpty { t.append([1, pciBus]); t.append(ascii: "PCI", width: 6); entries += 1 }
        t.append([1, isaBus]); t.append(ascii: "ISA", width: 6); entries += 1
        t.append([2, ioapicID, 0x11, 0x01]); t.append(le: ioapicAddress); entries += 1
        for irq in UInt8(0)..<16 {              // ISA IRQ n → IOAPIC pin n, conforming polarity/trigger
            t.append([3, 0]); t.append(le: UInt16(0)); t.append([isaBus, irq, ioapicID, irq]); entries += 1
        }
        for p in pciInterrupts {               // INT, flags: active low (3), level (3 << 2); source: device << 2 | pin
            t.append([3, 0]); t.append(le: UInt16(0x0F)); t.append([pciBus, p.device << 2 | p.pin, ioapicID, p.ioapicPin]); entries += 1
        }
        t.append([4, 3]); t.append(le: UInt16(0)); t.append([0, 0, 0xFF, 0]); entries += 1  // ExtINT → LINT0
        t.append([4, 1]); t.append(le: UInt16(0)); t.append([0, 0, 0xFF, 1]); entries += 1  // NMI → LINT1
        t.set(UInt16(t.count), at: 4)
        t.set(UInt16(entries), at: entryCountOffset)
        t.set(checksumByte(t.bytes), at: 7)

        var f = ByteWriter()
        f.append(ascii: "_MP_", width: 4)
        f.append(le: UInt32(tableAddress))
        f.append(1)                             // length in 16-byte units
        f.append(4)                             // revision 1.4
        f.append(0)                             // checksum, below
        f.append([0, 0, 0, 0, 0])               // feature bytes: configuration table present
        f.set(checksumByte(f.bytes), at: 10)
        return f.bytes + t.bytes
    }
}
