import ByteOrder
import Testing

@Suite struct ByteOrderTests {
    @Test func roundTripsAndBounds() {
        var bytes = [UInt8](littleEndian: UInt32(0x1122_3344))
        #expect(bytes == [0x44, 0x33, 0x22, 0x11])
        #expect(bytes.loadLittleEndian(UInt16.self, at: 2) == 0x1122)
        #expect(bytes.loadLittleEndian(UInt32.self, at: 1) == nil)    // would run past the end
        #expect(bytes.loadLittleEndian(UInt16.self, at: -1) == nil)
        bytes.storeLittleEndian(UInt16(0xBEEF), at: 1)
        #expect(bytes == [0x44, 0xEF, 0xBE, 0x11])
        var out: UInt64 = 0
        withUnsafeMutableBytes(of: &out) { UnsafeMutableRawBufferPointer(rebasing: $0[0..<3]).storeLittleEndian(0xAABB_CCDD) }
        #expect(out == 0xBB_CCDD)
        #expect(bytes.withUnsafeBytes { $0.littleEndianValue } == 0x11BE_EF44)
    }
}
