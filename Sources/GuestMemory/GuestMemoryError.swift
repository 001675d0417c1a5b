/// Why a guest-memory access was refused. Guest-controlled addresses end up here, so these are
/// ordinary values to log and recover from, never crashes.
public enum GuestMemoryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `[address, address + length)` is not entirely inside one RAM region.
    case outOfRange(address: GuestAddress, length: UInt64)
    /// `address + length` overflows 64 bits.
    case overflow(address: GuestAddress, length: UInt64)

    public var description: String {
        switch self {
        case let .outOfRange(address, length):
            "guest memory access [\(address), +\(hex(length))) is outside RAM"
        case let .overflow(address, length):
            "guest memory access at \(address) length \(hex(length)) overflows the address space"
        }
    }
}
