import Boot
import Testing

/// Reads an MP table the way the Intel MultiProcessor Specification 1.4 lays it out (chapter 4),
/// written from the specification's offsets and not from `MPTable.build`, so that a field the
/// builder puts in the wrong place fails here (as the missing OEM-table-size field once did:
/// Linux then read the local APIC address as 0xFEE0 and registered no processors).
struct MPSpecReader {
    struct Processor { var apicID: UInt8; var enabled: Bool; var bootstrap: Bool }
    struct IOAPIC { var id: UInt8; var enabled: Bool; var address: UInt32 }
    struct Interrupt { var kind: UInt8; var sourceBus: UInt8; var sourceIRQ: UInt8; var destination: UInt8; var pin: UInt8 }

    var lapicAddress: UInt32 = 0
    var processors: [Processor] = []
    var buses: [(id: UInt8, type: String)] = []
    var ioapics: [IOAPIC] = []
    var ioInterrupts: [Interrupt] = []
    var localInterrupts: [Interrupt] = []

    enum Failure: Error { case bad(String) }

    /// `image` holds the table as placed at physical address `base`.
    init(_ image: [UInt8], base: UInt64) throws {
        func u8(_ o: Int) throws -> UInt8 { guard o < image.count else { throw Failure.bad("read past end at \(o)") }; return image[o] }
        func u16(_ o: Int) throws -> UInt16 { UInt16(try u8(o)) | UInt16(try u8(o + 1)) << 8 }
        func u32(_ o: Int) throws -> UInt32 { UInt32(try u16(o)) | UInt32(try u16(o + 2)) << 16 }
        func sum(_ r: Range<Int>) -> UInt8 { image[r].reduce(0, &+) }

        // Floating pointer structure (table 4-1): 16 bytes.
        guard image.count >= 16, Array(image[0..<4]) == Array("_MP_".utf8) else { throw Failure.bad("no _MP_ signature") }
        let paragraphs = try u8(8), revision = try u8(9)
        guard paragraphs == 1 else { throw Failure.bad("floating pointer length \(paragraphs) paragraphs") }
        guard revision == 1 || revision == 4 else { throw Failure.bad("spec revision \(revision)") }
        guard sum(0..<16) == 0 else { throw Failure.bad("floating pointer checksum") }
        guard try u8(11) == 0 else { throw Failure.bad("feature byte 1 names a default configuration") }
        let physical = UInt64(try u32(4))
        guard physical >= base, physical - base < UInt64(image.count) else { throw Failure.bad("config table pointer outside the image") }
        let t = Int(physical - base)

        // Configuration table header (table 4-2): 44 bytes.
        guard Array(image[t..<t + 4]) == Array("PCMP".utf8) else { throw Failure.bad("no PCMP signature") }
        let length = Int(try u16(t + 4))
        guard t + length <= image.count, length >= 44 else { throw Failure.bad("base table length \(length)") }
        let tableRevision = try u8(t + 6)
        guard tableRevision == 1 || tableRevision == 4 else { throw Failure.bad("table spec revision \(tableRevision)") }
        guard sum(t..<t + length) == 0 else { throw Failure.bad("base table checksum") }
        let oemTableSize = try u16(t + 32)
        let oemTable = try u32(t + 28)
        guard oemTable == 0 || oemTableSize > 0 else { throw Failure.bad("OEM table pointer without a size") }
        let entryCount = Int(try u16(t + 34))
        lapicAddress = try u32(t + 36)
        guard try u16(t + 40) == 0 else { throw Failure.bad("extended table length set but none present") }

        // Entries (tables 4-3 .. 4-8): processor 20 bytes, the others 8.
        var o = t + 44
        for _ in 0..<entryCount {
            let type = try u8(o)
            switch type {
            case 0:
                let flags = try u8(o + 3)
                processors.append(Processor(apicID: try u8(o + 1), enabled: flags & 1 != 0, bootstrap: flags & 2 != 0))
                o += 20
            case 1:
                let name = String(decoding: image[o + 2..<o + 8], as: UTF8.self).trimmingCharacters(in: " ")
                buses.append((try u8(o + 1), name))
                o += 8
            case 2:
                ioapics.append(IOAPIC(id: try u8(o + 1), enabled: try u8(o + 3) & 1 != 0, address: try u32(o + 4)))
                o += 8
            case 3, 4:
                let entry = Interrupt(kind: try u8(o + 1), sourceBus: try u8(o + 4), sourceIRQ: try u8(o + 5),
                                      destination: try u8(o + 6), pin: try u8(o + 7))
                if type == 3 { ioInterrupts.append(entry) } else { localInterrupts.append(entry) }
                o += 8
            default:
                throw Failure.bad("unknown entry type \(type) at offset \(o - t)")
            }
        }
        guard o == t + length else { throw Failure.bad("entries end at \(o - t), base table length says \(length)") }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(self.reversed().drop { $0 == set || $0 == "\0" }.reversed())
    }
}

@Suite struct MPTableTests {
    @Test(arguments: [1, 2, 4, 16])
    func aSpecReaderFindsEveryCPUTheIOAPICAndTheISAInterrupts(cpus: Int) throws {
        let base: UInt64 = 0xF0000
        let image = MPTable.build(base: base, cpus: cpus, ioapicAddress: 0xFEC0_0000, lapicAddress: 0xFEE0_0000)
        let table = try MPSpecReader(image, base: base)

        #expect(table.lapicAddress == 0xFEE0_0000)
        #expect(table.processors.map { $0.apicID } == (0..<cpus).map { UInt8($0) })
        #expect(table.processors.allSatisfy { $0.enabled })
        #expect(table.processors.filter { $0.bootstrap }.map { $0.apicID } == [0])

        #expect(table.buses.count == 1 && table.buses[0].type == "ISA")
        #expect(table.ioapics.count == 1)
        let ioapic = try #require(table.ioapics.first)
        #expect(ioapic.enabled && ioapic.address == 0xFEC0_0000)
        #expect(!table.processors.contains { $0.apicID == ioapic.id }, "IOAPIC ID clashes with a CPU's APIC ID")

        // Every ISA IRQ reaches the IOAPIC, on its own pin, from the ISA bus.
        let isa = table.buses[0].id
        #expect(table.ioInterrupts.map { $0.sourceIRQ } == Array(0..<16))
        #expect(table.ioInterrupts.allSatisfy { $0.sourceBus == isa && $0.destination == ioapic.id && $0.pin == $0.sourceIRQ })
        // ExtINT on LINT0 and NMI on LINT1 of every local APIC.
        #expect(table.localInterrupts.map { $0.kind } == [3, 1])
        #expect(table.localInterrupts.map { $0.pin } == [0, 1])
    }

    /// Linux finds a PCI device's interrupt by its PCI bus number, which must be the MP bus ID
    /// (IO_APIC_get_PCI_irq_vector compares them); INTA# of slot 3 goes to IOAPIC pin 17.
    @Test func pciInterruptsAreOnTheBusWhoseIDIsThePCIBusNumber() throws {
        let base: UInt64 = 0xF0000
        let image = MPTable.build(base: base, cpus: 2, ioapicAddress: 0xFEC0_0000, lapicAddress: 0xFEE0_0000,
                                  pciInterrupts: [MPTable.PCIInterrupt(device: 3, pin: 0, ioapicPin: 17)])
        let table = try MPSpecReader(image, base: base)
        let pci = try #require(table.buses.first { $0.type == "PCI" })
        let isa = try #require(table.buses.first { $0.type == "ISA" })
        #expect(pci.id == 0 && isa.id != 0)
        let fromPCI = table.ioInterrupts.filter { $0.sourceBus == pci.id }
        #expect(fromPCI.count == 1 && fromPCI[0].sourceIRQ == 3 << 2 && fromPCI[0].pin == 17)
        #expect(table.ioInterrupts.filter { $0.sourceBus == isa.id }.count == 16)
    }
}
