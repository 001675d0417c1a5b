/// Little-endian bytes, the byte order of x86, virtio, PCI, ACPI and the boot protocol: the one
/// set of helpers every module uses to read and build them (a leaf module, no dependencies).

extension Array where Element == UInt8 {
    /// The bytes of `value`, least significant first.
    public init<T: FixedWidthInteger>(littleEndian value: T) {
        self = Swift.withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// The integer stored little-endian at `offset`, or nil if it does not fit inside.
    public func loadLittleEndian<T: FixedWidthInteger>(_: T.Type = T.self, at offset: Int) -> T? {
        guard offset >= 0, offset <= count - MemoryLayout<T>.size else { return nil }
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(self[offset + i]) << (8 * i) }
        return v
    }

    /// Overwrites `MemoryLayout<T>.size` bytes at `offset` (which must exist) with `value`.
    public mutating func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes as a little-endian integer (up to 8 bytes): what the guest wrote.
    @inline(__always)
    public var littleEndianValue: UInt64 {
        var v: UInt64 = 0
        for i in 0..<Swift.min(count, 8) { v |= UInt64(self[i]) << (8 * UInt64(i)) }
        return v
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores the low `count` bytes of `value`, little-endian: what the guest reads.
    @inline(__always)
    public func storeLittleEndian(_ value: UInt64) {
        for i in 0..<Swift.min(count, 8) { self[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
}
