/// How a PCI function's interrupts leave it: MSI-X vectors and the INTx pin. The machine
/// implements this with GSI routes and irqfds; tests implement it with counters.
///
/// All calls may come from any thread (vCPU threads for table writes, I/O threads for
/// interrupts) and must be cheap.
public protocol PCIInterruptSink: Sendable {
    /// The guest (re)programmed or (un)masked `vector`: deliver it to `message` from now on,
    /// or nowhere (nil) while it is masked, disabled or unset.
    func route(vector: Int, message: MSIXMessage?)
    /// Deliver `vector` (its route is set: the caller checked it is unmasked).
    func signal(vector: Int)
    /// Assert the INTx pin. It stays asserted until the guest acknowledges the interrupt at
    /// the interrupt controller; the machine then asks the function whether to assert again.
    func assertINTx()
}

/// Hands out BAR addresses inside the root's windows, naturally aligned, in order.
public struct PCIResourceAllocator: Sendable {
    private var nextMemory: UInt64
    private var nextIO: UInt64
    private let memoryEnd: UInt64
    private let ioEnd: UInt64

    public init(root: PCIRoot) {
        nextMemory = root.mmioWindow.base
        memoryEnd = root.mmioWindow.base + root.mmioWindow.size
        nextIO = root.ioWindow.base
        ioEnd = root.ioWindow.base + root.ioWindow.size
    }

    /// The next free, naturally aligned address for `size` bytes of `kind`.
    public mutating func allocate(_ kind: PCIBarDefinition.Kind, size: UInt64) throws(PCIAllocationError) -> UInt64 {
        func take(_ next: inout UInt64, end: UInt64) throws(PCIAllocationError) -> UInt64 {
            let start = (next + size - 1) & ~(size - 1)
            guard start + size <= end else { throw PCIAllocationError(kind: kind, size: size) }
            next = start + size
            return start
        }
        return kind == .io ? try take(&nextIO, end: ioEnd) : try take(&nextMemory, end: memoryEnd)
    }
}

public struct PCIAllocationError: Error, Sendable, CustomStringConvertible {
    public let kind: PCIBarDefinition.Kind
    public let size: UInt64
    public var description: String { "the PCI \(kind == .io ? "I/O" : "memory") window has no room for another \(size)-byte BAR" }
}
