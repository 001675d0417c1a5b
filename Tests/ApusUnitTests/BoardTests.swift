import CKVM
import GuestMemory
import KVM
import Machine
import Testing

@Suite struct LongModeTests {
    @Test func pageTablesIdentityMapTheLow4GiB() throws {
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 2 << 20)])
        try LongMode.writeTables(into: memory)
        let pml4e = try memory.load(UInt64.self, at: GuestAddress(MemoryMap.pml4))
        #expect(pml4e == MemoryMap.pdpt | 0x3)
        for gib in 0..<4 {
            let pdpte = try memory.load(UInt64.self, at: GuestAddress(MemoryMap.pdpt + UInt64(gib * 8)))
            let pd = pdpte & ~0xFFF
            #expect(pd == MemoryMap.pageDirectories + UInt64(gib) * 0x1000)
            // Spot-check the last 2 MiB page of each GiB.
            let pde = try memory.load(UInt64.self, at: GuestAddress(pd + 511 * 8))
            #expect(pde == (UInt64(gib) << 30 | 511 << 21 | 0x83))
        }
        #expect(try memory.load(UInt64.self, at: GuestAddress(MemoryMap.gdt + 0x10)) == 0x00AF_9B00_0000_FFFF)
    }

    @Test func specialRegistersSelectLongMode() {
        let s = LongMode.specialRegisters(from: kvm_sregs())
        #expect(s.efer == 0x500 && s.cr0 & 0x8000_0001 == 0x8000_0001 && s.cr4 & 0x20 != 0)
        #expect(s.cs.l == 1 && s.cs.selector == 0x10 && s.ss.selector == 0x18 && s.cr3 == MemoryMap.pml4)
    }
}

@Suite struct MemoryMapTests {
    @Test func ramIsSplitAroundTheHole() {
        #expect(MemoryMap.ramRanges(size: 512 << 20).map(\.size) == [512 << 20])
        let big = MemoryMap.ramRanges(size: 4 << 30)
        #expect(big.count == 2)
        #expect(big[0].start == 0 && big[0].size == MemoryMap.mmioHoleStart)
        #expect(big[1].start == 1 << 32 && big[1].size == (4 << 30) - MemoryMap.mmioHoleStart)
    }
}

@Suite struct InterruptRoutingTests {
    @Test func defaultRoutesMirrorKVMsIrqchipSetup() {
        let t = GSIRoutingTable.withDefaultIRQChipRoutes()
        #expect(t.routes.filter { $0.gsi == 4 }.count == 2)       // PIC + IOAPIC
        #expect(t.routes.filter { $0.gsi == 2 }.count == 1)       // cascade: IOAPIC only
        #expect(t.routes.filter { $0.gsi == 20 }.count == 1)
        #expect(t.routes.count == 15 * 2 + 1 + 8)
    }

    @Test func msiRouteReplacesOnlyItsOwnGSI() {
        var t = GSIRoutingTable.withDefaultIRQChipRoutes()
        let before = t.routes.count
        t.setMSI(gsi: 24, .fixed(vector: 0x40, destinationAPIC: 1))
        t.setMSI(gsi: 24, .fixed(vector: 0x41, destinationAPIC: 1))
        #expect(t.routes.count == before + 1)
        #expect(t.routes.last?.target == .msi(MSIMessage(address: 0xFEE0_1000, data: 0x41)))
    }
}

@Suite struct IOEventTests {
    @Test func describesRegistrations() {
        #expect(IOEventAddress.fastMMIO(address: 0xD000_1000).description == "fast-mmio 0xd0001000")
        #expect(IOEventAddress.pio(port: 0x520, length: 4).description == "pio port 0x520 len 4")
    }
}
