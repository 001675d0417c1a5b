/// ACPI tables for a hardware-reduced x86 machine: RSDP → XSDT → FADT (→ DSDT) and MADT.
///
/// Hardware-reduced (FADT flag bit 20) means no PM timer, SCI or PM1 blocks: the guest powers
/// off through the FADT's sleep-control register and reboots through its reset register, both
/// I/O ports served by `AcpiPowerDevice`. Linux then skips the legacy PIC and PIT, so timing
/// comes from the LAPIC timer, TSC and kvm-clock.
public struct ACPITables: Sendable {
    /// The I/O ports of the power device (see `Devices.AcpiPowerDevice`).
    public struct PowerPorts: Sendable {
        public var sleepControl: UInt16
        public var sleepStatus: UInt16
        public var reset: UInt16
        public var resetValue: UInt8
        public init(sleepControl: UInt16, sleepStatus: UInt16, reset: UInt16, resetValue: UInt8) {
            self.sleepControl = sleepControl
            self.sleepStatus = sleepStatus
            self.reset = reset
            self.resetValue = resetValue
        }
    }

    /// All tables laid out from `base`, ready to copy into guest memory there.
    public let bytes: [UInt8]
    public let base: UInt64
    /// Guest address of the RSDP (for boot_params.acpi_rsdp_addr).
    public var rsdpAddress: UInt64 { base }
    /// Offsets of each table inside `bytes`, by signature.
    public let offsets: [String: Int]

    static let oemID = "APUS  "
    static let oemTableID = "APUSVMM "
    static let creatorID: UInt32 = 0x5355_5041  // "APUS"

    /// SLP_TYP for S5 in the DSDT's `\_S5` package; the guest writes `SLP_TYP << 2 | SLP_EN`.
    public static let s5SleepType: UInt8 = 5
    public static let sleepEnable: UInt8 = 0x20

    /// Where PCI configuration space is memory-mapped (ECAM), for the MCFG table.
    public struct ECAM: Sendable {
        public var base: UInt64
        public var firstBus: UInt8, lastBus: UInt8
        public init(base: UInt64, firstBus: UInt8, lastBus: UInt8) { self.base = base; self.firstBus = firstBus; self.lastBus = lastBus }
    }

    /// Builds the tables for `cpus` vCPUs. `dsdtDevices` are extra AML terms placed in `\_SB`;
    /// with `ecam`, an MCFG table describes it.
    public init(base: UInt64, cpus: Int, ioapicAddress: UInt32, lapicAddress: UInt32,
                power: PowerPorts, dsdtDevices: [[UInt8]] = [], ecam: ECAM? = nil) {
        self.base = base
        let dsdt = Self.table("DSDT", revision: 2, body:
            AML.name("\\_S5", AML.package([AML.integer(UInt64(Self.s5SleepType)), AML.integer(0), AML.integer(0), AML.integer(0)]))
            + (dsdtDevices.isEmpty ? [] : AML.scope("\\_SB", dsdtDevices)))
        let madt = Self.madt(cpus: cpus, ioapic: ioapicAddress, lapic: lapicAddress)

        let mcfg = ecam.map { Self.mcfg($0) }
        // Layout: RSDP, XSDT, FADT, MADT, [MCFG], DSDT, each 16-byte aligned.
        var out = ByteWriter()
        var offsets: [String: Int] = [:]
        func align() { while out.count % 16 != 0 { out.append(0) } }
        offsets["RSDP"] = 0
        out.append([UInt8](repeating: 0, count: 36)); align()
        offsets["XSDT"] = out.count
        let xsdtSize = 36 + (mcfg == nil ? 2 : 3) * 8
        out.append([UInt8](repeating: 0, count: xsdtSize)); align()
        offsets["FACP"] = out.count
        out.append([UInt8](repeating: 0, count: 276)); align()
        offsets["APIC"] = out.count
        out.append(madt); align()
        if let mcfg {
            offsets["MCFG"] = out.count
            out.append(mcfg); align()
        }
        offsets["DSDT"] = out.count
        out.append(dsdt); align()

        func address(_ sig: String) -> UInt64 { base + UInt64(offsets[sig]!) }
        let fadt = Self.fadt(dsdt: address("DSDT"), power: power)
        out.set(fadt, at: offsets["FACP"]!)
        let xsdt = Self.table("XSDT", revision: 1, body: AML.le(address("FACP")) + AML.le(address("APIC"))
                              + (mcfg == nil ? [] : AML.le(address("MCFG"))))
        out.set(xsdt, at: offsets["XSDT"]!)
        out.set(Self.rsdp(xsdt: address("XSDT")), at: 0)
        bytes = out.bytes
        self.offsets = offsets
    }

    /// The 36-byte header + body, with length and checksum filled in.
    static func table(_ signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        var t = ByteWriter()
        t.append(ascii: signature, width: 4)
        t.append(le: UInt32(36 + body.count))
        t.append(revision)
        t.append(0)  // checksum, below
        t.append(ascii: oemID, width: 6)
        t.append(ascii: oemTableID, width: 8)
        t.append(le: UInt32(1))
        t.append(le: creatorID)
        t.append(le: UInt32(1))
        t.append(body)
        t.set(checksumByte(t.bytes), at: 9)
        return t.bytes
    }

    static func rsdp(xsdt: UInt64) -> [UInt8] {
        var r = ByteWriter()
        r.append(ascii: "RSD PTR ", width: 8)
        r.append(0)                      // checksum of the first 20 bytes
        r.append(ascii: oemID, width: 6)
        r.append(2)                      // revision 2: XSDT present
        r.append(le: UInt32(0))          // no RSDT
        r.append(le: UInt32(36))
        r.append(le: xsdt)
        r.append(0)                      // extended checksum
        r.append([0, 0, 0])
        r.set(checksumByte(r.bytes[0..<20]), at: 8)
        r.set(checksumByte(r.bytes), at: 32)
        return r.bytes
    }

    /// A Generic Address Structure for a byte-wide I/O port.
    static func ioPortGAS(_ port: UInt16) -> [UInt8] {
        [1, 8, 0, 1] + AML.le(UInt64(port))  // space: system I/O; 8 bits; offset 0; byte access
    }

    static func fadt(dsdt: UInt64, power: PowerPorts) -> [UInt8] {
        var body = ByteWriter(count: 276 - 36)
        func at(_ tableOffset: Int) -> Int { tableOffset - 36 }
        body.set(UInt32(truncatingIfNeeded: dsdt), at: at(40))
        // IA-PC boot architecture: no VGA (bit 2), no CMOS RTC (bit 5); no 8042 (bit 1 clear).
        body.set(UInt16(1 << 2 | 1 << 5), at: at(109))
        // Flags: WBINVD (0), RESET_REG_SUP (10), HW_REDUCED_ACPI (20).
        body.set(UInt32(1 << 0 | 1 << 10 | 1 << 20), at: at(112))
        body.set(ioPortGAS(power.reset), at: at(116))
        body.set(power.resetValue, at: at(128))
        body.set(UInt8(5), at: at(131))           // FADT minor version: 6.5
        body.set(dsdt, at: at(140))               // X_DSDT
        body.set(ioPortGAS(power.sleepControl), at: at(244))
        body.set(ioPortGAS(power.sleepStatus), at: at(256))
        body.set(Array("APUSVMM\0".utf8), at: at(268))  // hypervisor vendor identity
        return table("FACP", revision: 6, body: body.bytes)
    }

    /// MCFG (PCI Firmware 3.2 §4.1.2): reserved qword, then one allocation per ECAM region.
    static func mcfg(_ ecam: ECAM) -> [UInt8] {
        var body = ByteWriter()
        body.append(le: UInt64(0))
        body.append(le: ecam.base)
        body.append(le: UInt16(0))        // segment group 0
        body.append([ecam.firstBus, ecam.lastBus])
        body.append(le: UInt32(0))
        return table("MCFG", revision: 1, body: body.bytes)
    }

    static func madt(cpus: Int, ioapic: UInt32, lapic: UInt32) -> [UInt8] {
        var body = ByteWriter()
        body.append(le: lapic)
        body.append(le: UInt32(1))                // PCAT_COMPAT: dual 8259s present
        for id in 0..<cpus {                      // Processor Local APIC: UID, APIC ID, enabled
            body.append([0, 8, UInt8(id), UInt8(id)])
            body.append(le: UInt32(1))
        }
        body.append([1, 12, 0, 0])                // I/O APIC: ID 0, reserved
        body.append(le: ioapic)
        body.append(le: UInt32(0))                // GSI base
        body.append([4, 6, 0xFF])                 // Local APIC NMI: all processors,
        body.append(le: UInt16(0))                // flags: conforming,
        body.append(1)                            // on LINT1
        return table("APIC", revision: 5, body: body.bytes)
    }
}

/// The power button of a hardware-reduced machine, as AML for `\_SB`: a Generic Event Device
/// (`ACPI0013`, ACPI 6.5 §5.6.9) whose interrupt runs its `_EVT` method, which notifies a
/// power button device (`PNP0C0C`) with 0x80, "pressed".
///
/// A hardware-reduced machine has no PM1 event block and no SCI, so the fixed-feature power
/// button does not exist; GED is what such machines (cloud-hypervisor, Firecracker, QEMU's
/// microvm and virt) use instead. Linux's GED driver is built in wherever ACPI is; the button
/// driver (`button.ko`, CONFIG_ACPI_BUTTON) turns the notification into a KEY_POWER input
/// event — what happens then is up to the guest's userspace (systemd-logind, acpid, or the
/// demo guest's /init).
public enum ACPIPowerButton {
    /// The two devices; `gsi` is the GED's interrupt (edge-triggered, active high).
    public static func dsdtDevices(gsi: UInt32) -> [[UInt8]] {
        let ged = AML.device("GED0", [
            AML.name("_HID", AML.string("ACPI0013")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resourceTemplate([AML.interrupt(gsi, edge: true)])),
            // One event source, so no register to read: any interrupt is the button.
            AML.method("_EVT", arguments: 1, [AML.notify("\\_SB.PWRB", 0x80)]),
        ])
        let button = AML.device("PWRB", [
            AML.name("_HID", AML.eisaID("PNP0C0C")),
            AML.name("_UID", AML.integer(0)),
        ])
        return [ged, button]
    }
}
