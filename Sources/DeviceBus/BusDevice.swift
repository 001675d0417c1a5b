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

/// Little-endian helpers for devices reading and writing the access bytes.
extension UnsafeRawBufferPointer {
    /// The bytes as a little-endian integer (up to 8 bytes).
    @inline(__always)
    public var littleEndianValue: UInt64 {
        var v: UInt64 = 0
        for i in 0..<Swift.min(count, 8) { v |= UInt64(self[i]) << (8 * UInt64(i)) }
        return v
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Stores the low `count` bytes of `value`, little-endian.
    @inline(__always)
    public func storeLittleEndian(_ value: UInt64) {
        for i in 0..<Swift.min(count, 8) { self[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
}
