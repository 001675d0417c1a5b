/// One base address register as the device defines it: which kind of space it claims and how
/// much. The address is the guest's to choose (or the firmware's); `PCIConfigSpace` holds it.
public struct PCIBarDefinition: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Port I/O (bit 0 set in the register).
        case io
        /// 32-bit memory, not prefetchable.
        case memory32
    }
    public var kind: Kind
    /// Size in bytes: a power of two, at least 16 for memory and 4 for I/O.
    public var size: UInt64
    /// Where Apus places it at reset (the guest may move it).
    public var initialAddress: UInt64

    public init(kind: Kind, size: UInt64, initialAddress: UInt64) {
        precondition(size.nonzeroBitCount == 1 && size >= (kind == .io ? 4 : 16), "BAR size must be a power of two")
        precondition(initialAddress % size == 0, "a BAR is naturally aligned")
        self.kind = kind
        self.size = size
        self.initialAddress = initialAddress
    }

    /// The low bits of the register that encode the kind (read-only).
    var typeBits: UInt32 { kind == .io ? 0x1 : 0x0 }
    /// The register bits the guest can write: the address bits at or above the size.
    var addressMask: UInt32 {
        let sizeMask = ~UInt32(truncatingIfNeeded: size - 1)
        return sizeMask & (kind == .io ? 0xFFFF_FFFC : 0xFFFF_FFF0)
    }
}

/// A BAR the function currently decodes: its register holds `address` and the command
/// register enables its kind of space.
public struct PCIBarMapping: Sendable, Equatable {
    public var index: Int
    public var kind: PCIBarDefinition.Kind
    public var address: UInt64
    public var size: UInt64
    public init(index: Int, kind: PCIBarDefinition.Kind, address: UInt64, size: UInt64) {
        self.index = index
        self.kind = kind
        self.address = address
        self.size = size
    }
}
