import ByteOrder

/// Little-endian byte building for boot structures and firmware tables.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(count: Int = 0) { bytes = [UInt8](repeating: 0, count: count) }
    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var count: Int { bytes.count }

    public mutating func append(_ value: UInt8) { bytes.append(value) }
    public mutating func append(_ values: [UInt8]) { bytes.append(contentsOf: values) }
    public mutating func append<T: FixedWidthInteger>(le value: T) {
        bytes.append(contentsOf: [UInt8](littleEndian: value))
    }
    /// Appends `text` as ASCII, padded with `pad` or cut to exactly `width` bytes.
    public mutating func append(ascii text: String, width: Int, pad: UInt8 = 0x20) {
        var field = Array(text.utf8.prefix(width))
        while field.count < width { field.append(pad) }
        bytes.append(contentsOf: field)
    }

    /// Overwrites at `offset` (which must already exist).
    public mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        bytes.storeLittleEndian(value, at: offset)
    }
    public mutating func set(_ values: [UInt8], at offset: Int) {
        for (i, b) in values.enumerated() { bytes[offset + i] = b }
    }

    /// Reads back a little-endian integer.
    public func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        bytes.loadLittleEndian(T.self, at: offset)!
    }
}

/// The byte that makes `bytes` sum to zero mod 256 (ACPI and MP-table checksums).
public func checksumByte<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
    let sum = bytes.reduce(UInt8(0)) { $0 &+ $1 }
    return 0 &- sum
}

/// Reads a little-endian integer at `offset`, or nil past the end.
func readLE<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, as: T.Type = T.self) -> T? {
    bytes.loadLittleEndian(T.self, at: offset)
}
