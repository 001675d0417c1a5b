import GuestMemory
import LinuxSupport
import Testing

@Suite struct GuestMemoryTests {
    let memory: GuestMemory

    init() throws {
        // Two regions with a gap, like RAM around the MMIO hole.
        memory = try GuestMemory(ranges: [(GuestAddress(0), 0x10000), (GuestAddress(0x100000), 0x10000)])
    }

    @Test func littleEndianRoundTrip() throws {
        try memory.store(UInt32(0x1122_3344), at: GuestAddress(0x100))
        #expect(try memory.load(UInt32.self, at: GuestAddress(0x100)) == 0x1122_3344)
        #expect(try memory.readBytes(GuestAddress(0x100), count: 4) == [0x44, 0x33, 0x22, 0x11])
        try memory.store(UInt64.max, at: GuestAddress(0x10FFF8))
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x10FFF8)) == .max)
    }

    @Test func accessesOutsideRAMAreErrors() {
        #expect(throws: GuestMemoryError.outOfRange(address: GuestAddress(0x20000), length: 4)) {
            try memory.store(UInt32(1), at: GuestAddress(0x20000))
        }
        // Starts in RAM, ends in the gap.
        #expect(throws: GuestMemoryError.outOfRange(address: GuestAddress(0xFFFE), length: 4)) {
            _ = try memory.load(UInt32.self, at: GuestAddress(0xFFFE))
        }
        // Spans the gap between two regions: refused even though both ends are RAM.
        #expect(!memory.contains(GuestAddress(0xF000), length: 0x100000))
        #expect(memory.contains(GuestAddress(0x100000), length: 0x10000))
        #expect(!memory.contains(GuestAddress(0x100000), length: 0x10001))
    }

    @Test func overflowingRangesAreErrors() {
        #expect(throws: GuestMemoryError.overflow(address: GuestAddress(UInt64.max - 1), length: 8)) {
            _ = try memory.load(UInt64.self, at: GuestAddress(UInt64.max - 1))
        }
        #expect(GuestAddress(UInt64.max).adding(1) == nil)
    }

    @Test func zeroLengthAccessesAreHarmless() throws {
        try memory.write([], to: GuestAddress(0x5_0000_0000))
        #expect(try memory.readBytes(GuestAddress(0x5_0000_0000), count: 0).isEmpty)
    }

    @Test func regionsAreSortedAndSized() {
        #expect(memory.regions.map(\.start) == [GuestAddress(0), GuestAddress(0x100000)])
        #expect(memory.totalSize == 0x20000)
    }
}

@Suite struct GuestRAMDumpTests {
    /// Guest RAM stays out of core dumps: its mapping carries the `dd` flag in smaps.
    @Test func guestRAMIsLeftOutOfCoreDumps() throws {
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 4 << 20)])
        let base = UInt(bitPattern: memory.regions[0].host)
        let smaps = String(decoding: try readWholeFile("/proc/self/smaps"), as: UTF8.self)
        var inMapping = false
        var flags: Substring?
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let start = UInt(line[..<dash], radix: 16), line.contains(" ") && !line.hasPrefix("VmFlags") {
                inMapping = start == base
            } else if inMapping && line.hasPrefix("VmFlags:") {
                flags = line
                break
            }
        }
        let vmFlags = try #require(flags, "no smaps entry for guest RAM at 0x\(String(base, radix: 16))")
        #expect(vmFlags.split(separator: " ").contains("dd"), "\(vmFlags)")
    }
}
