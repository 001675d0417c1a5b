/// A guest-physical address.
///
/// A distinct type so that guest addresses, offsets inside a region and host pointers can
/// never be mixed up silently.
public struct GuestAddress: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ value: UInt64) { self.rawValue = value }

    /// `self + offset`, or nil when it would pass 2^64.
    public func adding(_ offset: UInt64) -> GuestAddress? {
        let (sum, overflow) = rawValue.addingReportingOverflow(offset)
        return overflow ? nil : GuestAddress(sum)
    }

    public static func < (a: GuestAddress, b: GuestAddress) -> Bool { a.rawValue < b.rawValue }

    public var description: String { hex(rawValue) }
}

/// `0x` followed by lowercase hex digits; used in every log line and diagnosis.
public func hex<T: BinaryInteger>(_ value: T) -> String {
    "0x" + String(value, radix: 16)
}
