import ByteOrder
import DeviceBus
import Locking
import Testing

/// Records every access, for checking what the bus delivered.
final class RecordingDevice: BusDevice {
    let name: String
    let log = Locked<[String]>([])
    init(_ name: String) { self.name = name }
    func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        log.withLock { $0.append("r\(offset)/\(data.count)") }
        data.storeLittleEndian(0xA0 + offset)
    }
    func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        log.withLock { $0.append("w\(offset)=\(data.littleEndianValue)") }
    }
}

@Suite struct BusTests {
    @Test func dispatchesWithOffsetsRelativeToTheRange() throws {
        var bus = Bus(name: "pio")
        let a = RecordingDevice("a"), b = RecordingDevice("b")
        try bus.register(b, base: 0x3F8, length: 8)
        try bus.register(a, base: 0x60, length: 1)
        var value: UInt8 = 0
        withUnsafeMutableBytes(of: &value) { _ = bus.read(0x3FD, data: $0) }
        #expect(value == 0xA5)
        let two: UInt16 = 0x1234
        withUnsafeBytes(of: two) { _ = bus.write(0x60, data: $0) }
        #expect(b.log.withLock { $0 } == ["r5/1"])
        #expect(a.log.withLock { $0 } == ["w0=4660"])
        #expect(bus.entries.map(\.base) == [0x60, 0x3F8])
    }

    @Test func refusesOverlapsAndEmptyRanges() throws {
        var bus = Bus(name: "mmio")
        try bus.register(RecordingDevice("first"), base: 0x1000, length: 0x100)
        #expect(throws: BusError.self) { try bus.register(RecordingDevice("x"), base: 0x10FF, length: 1) }
        #expect(throws: BusError.self) { try bus.register(RecordingDevice("x"), base: 0x0F00, length: 0x101) }
        #expect(throws: BusError.self) { try bus.register(RecordingDevice("x"), base: 0x2000, length: 0) }
        #expect(throws: BusError.self) { try bus.register(RecordingDevice("x"), base: .max, length: 2) }
        // Adjacent on both sides is fine.
        try bus.register(RecordingDevice("below"), base: 0x0F00, length: 0x100)
        try bus.register(RecordingDevice("above"), base: 0x1100, length: 0x100)
        #expect(bus.entries.count == 3)
    }

    @Test func unclaimedReadsAreAllOnesAndWritesAreDropped() {
        let bus = Bus(name: "pio")
        var value: UInt32 = 0
        let entry = withUnsafeMutableBytes(of: &value) { bus.read(0x80, data: $0) }
        #expect(entry == nil)
        #expect(value == 0xFFFF_FFFF)
        let written = withUnsafeBytes(of: UInt32(5)) { bus.write(0x80, data: $0) }
        #expect(written == nil)
    }

    @Test func lookupFindsEveryRangeAmongMany() throws {
        var bus = Bus(name: "mmio")
        for i in (0..<50).reversed() {
            try bus.register(RecordingDevice("d\(i)"), base: UInt64(i) * 0x1000, length: 0x800)
        }
        for i in 0..<50 {
            #expect(bus.lookup(UInt64(i) * 0x1000 + 0x7FF)?.device.name == "d\(i)")
            #expect(bus.lookup(UInt64(i) * 0x1000 + 0x800) == nil)
        }
    }
}
