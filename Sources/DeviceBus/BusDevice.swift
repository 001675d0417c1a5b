import ByteOrder

/// A device as the buses see it: something that answers reads and writes at offsets inside the
/// address range it was registered at.
///
/// Port I/O and MMIO use the same interface (as in kvmtool and cloud-hypervisor); the device
/// does not know which bus, or which base address, it sits on. `data` points straight into the
/// vCPU's `kvm_run` page, so implementations must not keep it past the call.
public protocol BusDevice: AnyObject, Sendable {
    /// A short name for traces and statistics, e.g. `"serial0"`.
    var name: String { get }
    /// Fills `data` (1–8 bytes) with the value at `offset`.
    func read(offset: UInt64, data: UnsafeMutableRawBufferPointer)
    /// Takes the `data` (1–8 bytes) the guest wrote at `offset`.
    func write(offset: UInt64, data: UnsafeRawBufferPointer)
    /// The register at `offset`, for `--trace exits` (nil: just the offset is printed).
    func registerName(offset: UInt64, isWrite: Bool) -> String?
}

extension BusDevice {
    public func registerName(offset: UInt64, isWrite: Bool) -> String? { nil }
}
