import Boot
import Testing

/// A synthetic bzImage header: enough for the parser, with fields a test can change.
func fakeBzImage(version: UInt16 = 0x020F, xloadflags: UInt16 = 1, loadflags: UInt8 = 1,
                 setupSects: UInt8 = 1, kernelBytes: Int = 4096, initSize: UInt32 = 0x200_0000,
                 prefAddress: UInt64 = 0x100_0000, cmdlineSize: UInt32 = 2047) -> [UInt8] {
    var w = ByteWriter(count: (Int(setupSects) + 1) * 512 + kernelBytes)
    w.set(setupSects, at: 0x1F1)
    w.set(UInt16(0xAA55), at: 0x1FE)
    w.set(UInt8(0x6A), at: 0x201)           // header runs to 0x26C
    w.set(UInt32(0x5372_6448), at: 0x202)
    w.set(version, at: 0x206)
    w.set(loadflags, at: 0x211)
    w.set(UInt32(0x37FF_FFFF), at: 0x22C)    // initrd_addr_max
    w.set(UInt32(0x20_0000), at: 0x230)      // kernel_alignment
    w.set(UInt8(1), at: 0x234)
    w.set(xloadflags, at: 0x236)
    w.set(cmdlineSize, at: 0x238)
    w.set(prefAddress, at: 0x258)
    w.set(initSize, at: 0x260)
    return w.bytes
}

@Suite struct BzImageTests {
    @Test func parsesTheSetupHeader() throws {
        let image = try BzImage(fakeBzImage())
        #expect(image.protocolVersion == 0x020F && image.protocolDescription == "2.f")
        #expect(image.kernel.count == 4096)
        #expect(image.setupHeader.count == 0x202 + 0x6A - 0x1F1)
        #expect(image.commandLineSize == 2047 && image.preferredAddress == 0x100_0000)
    }

    @Test func refusesWhatIsNotABootableBzImage() {
        #expect(throws: BootError.notABzImage) { try BzImage([UInt8](repeating: 0, count: 8192)) }
        #expect(throws: BootError.notABzImage) { try BzImage(Array("#!/bin/sh\necho not a kernel\n".utf8)) }
        #expect(throws: BootError.protocolTooOld(0x0206)) { try BzImage(fakeBzImage(version: 0x0206)) }
        #expect(throws: BootError.no64BitEntry) { try BzImage(fakeBzImage(xloadflags: 0)) }
        #expect(throws: BootError.notLoadedHigh) { try BzImage(fakeBzImage(loadflags: 0)) }
        #expect(throws: BootError.truncated) { try BzImage(Array(fakeBzImage(setupSects: 20).prefix(0x1000))) }
    }
}

@Suite struct LinuxLayoutTests {
    let image = try! BzImage(fakeBzImage())

    @Test func initrdGoesHighAndClearOfTheKernel() throws {
        let layout = try LinuxLayout(image: image, initrdSize: 5_000_000, commandLineLength: 20, lowRAMEnd: 512 << 20)
        #expect(layout.entryPoint == 0x10_0200)
        #expect(layout.initrdAddress % 4096 == 0)
        #expect(layout.initrdAddress + layout.initrdSize <= 512 << 20)
        #expect(layout.initrdAddress >= layout.kernelWorkEnd)
        #expect(layout.kernelWorkEnd == 0x100_0000 + 0x200_0000)
    }

    @Test func refusesTooLittleMemory() {
        #expect(throws: BootError.self) {
            try LinuxLayout(image: image, initrdSize: 0, commandLineLength: 0, lowRAMEnd: 32 << 20)
        }
        #expect(throws: BootError.self) {
            try LinuxLayout(image: image, initrdSize: 40 << 20, commandLineLength: 0, lowRAMEnd: 64 << 20)
        }
    }

    /// Header fields are untrusted: a pref_address near 2^64 once overflowed `runAddress +
    /// initSize` and trapped; any address outside RAM below 4 GiB is refused with its own error.
    @Test(arguments: [UInt64.max, UInt64.max - 0x1000, 1 << 40, 1 << 32])
    func refusesAPreferredAddressOutsideRAM(prefAddress: UInt64) throws {
        let hostile = try BzImage(fakeBzImage(prefAddress: prefAddress))
        #expect(throws: BootError.kernelOutOfRange(preferredAddress: prefAddress, initSize: 0x200_0000)) {
            try LinuxLayout(image: hostile, initrdSize: 4096, commandLineLength: 0, lowRAMEnd: 512 << 20)
        }
    }

    @Test func refusesAnOverlongCommandLine() {
        #expect(throws: BootError.commandLineTooLong(length: 2048, limit: 2047)) {
            try LinuxLayout(image: image, initrdSize: 0, commandLineLength: 2048, lowRAMEnd: 512 << 20)
        }
    }
}

@Suite struct BootParamsTests {
    @Test func fieldsLandAtTheirOffsets() throws {
        var p = BootParams(image: try BzImage(fakeBzImage()))
        p.setCommandLine(address: 0x20000)
        p.setInitrd(address: 0x1F00_0000, size: 1234)
        p.setACPIRSDP(0xE0000)
        p.setMemoryMap([E820Entry(address: 0, size: 0x9FC00, kind: .ram),
                        E820Entry(address: 0x100000, size: 0x100000, kind: .ram)])
        let b = ByteWriter(bytes: p.bytes)
        #expect(b.get(UInt32.self, at: 0x202) == 0x5372_6448)    // header copied
        #expect(b.get(UInt8.self, at: 0x1EF) == 0)               // sentinel stays clear
        #expect(b.get(UInt8.self, at: 0x210) == 0xFF)            // type_of_loader
        #expect(b.get(UInt8.self, at: 0x211) & 0x81 == 0x81)     // LOADED_HIGH | CAN_USE_HEAP
        #expect(b.get(UInt32.self, at: 0x228) == 0x20000)
        #expect(b.get(UInt32.self, at: 0x218) == 0x1F00_0000 && b.get(UInt32.self, at: 0x21C) == 1234)
        #expect(b.get(UInt64.self, at: 0x70) == 0xE0000)
        #expect(b.get(UInt8.self, at: 0x1E8) == 2)
        #expect(b.get(UInt64.self, at: 0x2D0 + 20) == 0x100000 && b.get(UInt32.self, at: 0x2D0 + 36) == 1)
    }
}

@Suite struct ACPITests {
    let tables = ACPITables(base: 0xE0000, cpus: 2, ioapicAddress: 0xFEC0_0000, lapicAddress: 0xFEE0_0000,
                            power: .init(sleepControl: 0x600, sleepStatus: 0x601, reset: 0x602, resetValue: 1))

    func table(_ sig: String) -> ArraySlice<UInt8> {
        let at = tables.offsets[sig]!
        let w = ByteWriter(bytes: tables.bytes)
        let length = sig == "RSDP" ? 36 : Int(w.get(UInt32.self, at: at + 4))
        return tables.bytes[at..<(at + length)]
    }

    @Test func everyTableChecksumsToZero() {
        for sig in ["XSDT", "FACP", "APIC", "DSDT"] {
            #expect(table(sig).reduce(UInt8(0), &+) == 0, "\(sig) checksum")
            #expect(Array(table(sig).prefix(4)) == Array(sig.utf8))
        }
        let rsdp = table("RSDP")
        #expect(rsdp.prefix(20).reduce(UInt8(0), &+) == 0)
        #expect(rsdp.reduce(UInt8(0), &+) == 0)
        #expect(Array(rsdp.prefix(8)) == Array("RSD PTR ".utf8))
    }

    @Test func pointersLinkTheTables() {
        let w = ByteWriter(bytes: tables.bytes)
        func addr(_ sig: String) -> UInt64 { 0xE0000 + UInt64(tables.offsets[sig]!) }
        #expect(w.get(UInt64.self, at: 24) == addr("XSDT"))
        let xsdt = tables.offsets["XSDT"]!
        #expect(w.get(UInt64.self, at: xsdt + 36) == addr("FACP"))
        #expect(w.get(UInt64.self, at: xsdt + 44) == addr("APIC"))
        let fadt = tables.offsets["FACP"]!
        #expect(w.get(UInt64.self, at: fadt + 140) == addr("DSDT"))
        #expect(w.get(UInt32.self, at: fadt + 112) & (1 << 20) != 0)   // hardware-reduced
        #expect(w.get(UInt64.self, at: fadt + 244 + 4) == 0x600)       // sleep control port
        #expect(w.get(UInt64.self, at: fadt + 116 + 4) == 0x602)       // reset port
    }

    @Test func madtListsEveryCPUAndTheIOAPIC() {
        let madt = Array(table("APIC"))
        var at = 44
        var apicIDs: [UInt8] = []
        var ioapics = 0
        while at < madt.count {
            switch madt[at] {
            case 0: apicIDs.append(madt[at + 3])
            case 1: ioapics += 1
            default: break
            }
            at += Int(madt[at + 1])
        }
        #expect(apicIDs == [0, 1])
        #expect(ioapics == 1)
        #expect(at == madt.count)
    }

    @Test func dsdtHasTheS5Package() {
        let dsdt = Array(table("DSDT").dropFirst(36))
        // Name(\_S5, Package(4) {5, 0, 0, 0})
        #expect(dsdt == [0x08, 0x5C, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00])
    }
}

@Suite struct AMLTests {
    @Test(arguments: [(0, [UInt8(0x01)]), (0x3E, [0x3F]), (0x3F, [0x41, 0x04]), (0x1000, [0x83, 0x00, 0x01])])
    func packageLengthCountsItself(_ content: Int, _ expected: [UInt8]) {
        #expect(AML.packageLength(content) == expected)
    }

    @Test func integersUseTheShortestForm() {
        #expect(AML.integer(0) == [0x00])
        #expect(AML.integer(1) == [0x01])
        #expect(AML.integer(0x12) == [0x0A, 0x12])
        #expect(AML.integer(0x1234) == [0x0B, 0x34, 0x12])
        #expect(AML.integer(0xD000_0000) == [0x0C, 0x00, 0x00, 0x00, 0xD0])
    }

    @Test func eisaIDMatchesACPICA() {
        // iasl compiles EisaId("PNP0A08") to 0x080AD041.
        #expect(AML.eisaID("PNP0A08") == [0x0C, 0x41, 0xD0, 0x0A, 0x08])
    }

    @Test func namePathsAndDevices() {
        #expect(AML.namePath("\\_SB") == [0x5C, 0x5F, 0x53, 0x42, 0x5F])
        let dev = AML.device("VR00", [AML.name("_HID", AML.string("LNRO0005"))])
        #expect(Array(dev.prefix(2)) == [0x5B, 0x82])
        #expect(Int(dev[2]) == dev.count - 2)
    }
}

/// The power button's AML, byte for byte where iasl's output is known.
@Suite struct ACPIPowerButtonTests {
    @Test func methodAndNotifyEncodeAsIaslDoes() {
        // iasl: Method (_EVT, 1, NotSerialized) { Notify (\_SB.PWRB, 0x80) }
        let method = AML.method("_EVT", arguments: 1, [AML.notify("\\_SB.PWRB", 0x80)])
        #expect(method == [0x14, 0x13, 0x5F, 0x45, 0x56, 0x54, 0x01,
                           0x86, 0x5C, 0x2E, 0x5F, 0x53, 0x42, 0x5F, 0x50, 0x57, 0x52, 0x42, 0x0A, 0x80])
    }

    @Test func aGenericEventDeviceAndAPowerButton() {
        let devices = ACPIPowerButton.dsdtDevices(gsi: 9)
        #expect(devices.count == 2)
        let ged = devices[0], button = devices[1]
        func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
            haystack.count >= needle.count && (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<$0 + needle.count]) == needle }
        }
        #expect(contains(ged, AML.name("_HID", AML.string("ACPI0013"))))
        // Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 9 }
        #expect(contains(ged, [0x89, 0x06, 0x00, 0x03, 0x01, 0x09, 0x00, 0x00, 0x00]))
        #expect(contains(ged, AML.method("_EVT", arguments: 1, [AML.notify("\\_SB.PWRB", 0x80)])))
        #expect(contains(button, AML.namePath("PWRB")))
        // EisaId ("PNP0C0C") = 0x0C0CD041
        #expect(contains(button, AML.name("_HID", [0x0C, 0x41, 0xD0, 0x0C, 0x0C])))
    }
}
