/// The fuzzer's bytes, consumed front to back. Past the end every read yields zeros, so every
/// input decodes to something: the fuzzer never wastes executions on inputs a harness rejects.
public struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    public init(_ data: UnsafePointer<UInt8>?, _ count: Int) {
        bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : count)
    }

    public var isEmpty: Bool { position >= bytes.count }
    public var remaining: Int { max(bytes.count - position, 0) }

    /// The next `MemoryLayout<T>.size` bytes, little-endian (zero-filled past the end).
    public mutating func next<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size where position + i < bytes.count {
            v |= T(truncatingIfNeeded: bytes[position + i]) << (8 * i)
        }
        position += MemoryLayout<T>.size
        return v
    }

    /// The next `count` bytes as an integer (count ≤ 8), little-endian.
    public mutating func next(bytes count: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<min(count, 8) where position + i < bytes.count {
            v |= UInt64(bytes[position + i]) << (8 * UInt64(i))
        }
        position += count
        return v
    }

    /// The next `count` bytes (fewer if the input ends), or all that is left.
    public mutating func take(_ count: Int = .max) -> UnsafeRawBufferPointer {
        let start = min(position, bytes.count)
        let end = count >= bytes.count - start ? bytes.count : start + count
        position = max(position, end)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }
}
