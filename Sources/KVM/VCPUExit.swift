import CKVM

/// Why `KVM_RUN` returned, decoded from the shared `kvm_run` page.
///
/// The I/O cases carry a pointer to the data bytes *inside* `kvm_run`: a device reads from it
/// on a write and fills it on a read, and KVM completes the guest instruction on the next
/// `KVM_RUN`. Nothing is copied or allocated per exit.
public enum VCPUExit {
    /// Port I/O (`in`/`out`, or `rep ins`/`outs` when `count` > 1).
    case io(PortIO)
    /// A memory access KVM could not satisfy from RAM or an in-kernel device.
    case mmio(MMIOAccess)
    /// The guest executed `hlt` (only without an in-kernel LAPIC).
    case halt
    /// Triple fault (or another shutdown condition): the CPU cannot go on.
    case shutdown
    /// A system event such as PSCI/ACPI shutdown or reset requested through KVM.
    case systemEvent(type: UInt32)
    /// The hardware refused to enter the guest (bad guest state).
    case failEntry(reason: UInt64, cpu: UInt32)
    /// KVM hit something it cannot emulate.
    case internalError(InternalError)
    /// `KVM_RUN` returned early because of a signal or `immediate_exit` (a kick).
    case interrupted
    /// Any exit reason Apus does not handle.
    case unknown(reason: UInt32)

    /// Decodes `run` after `KVM_RUN` returned 0.
    @inline(__always)
    public static func decode(_ run: UnsafeMutablePointer<kvm_run>) -> VCPUExit {
        let raw = UnsafeMutableRawPointer(run)
        switch Int32(run.pointee.exit_reason) {
        case KVM_EXIT_IO:
            // SAFETY: exit_reason says the `io` member of the union is the live one.
            let io = run.pointee.io
            return .io(PortIO(
                port: io.port, size: Int(io.size), count: Int(io.count),
                isWrite: io.direction == UInt8(KVM_EXIT_IO_OUT),
                data: raw + Int(io.data_offset)))
        case KVM_EXIT_MMIO:
            // SAFETY: exit_reason says the `mmio` member is live; its data[8] is inside kvm_run.
            let len = Int(min(run.pointee.mmio.len, 8))
            return .mmio(MMIOAccess(
                address: run.pointee.mmio.phys_addr, length: len,
                isWrite: run.pointee.mmio.is_write != 0, data: UnsafeMutableRawPointer(apus_run_mmio_data(run))))
        case KVM_EXIT_HLT:
            return .halt
        case KVM_EXIT_SHUTDOWN:
            return .shutdown
        case KVM_EXIT_INTR:
            return .interrupted
        case KVM_EXIT_SYSTEM_EVENT:
            return .systemEvent(type: run.pointee.system_event.type)
        case KVM_EXIT_FAIL_ENTRY:
            return .failEntry(reason: run.pointee.fail_entry.hardware_entry_failure_reason,
                              cpu: run.pointee.fail_entry.cpu)
        case KVM_EXIT_INTERNAL_ERROR:
            let e = run.pointee.internal
            let n = Int(min(e.ndata, 16))
            let data = withUnsafeBytes(of: e.data) { Array($0.bindMemory(to: UInt64.self).prefix(n)) }
            return .internalError(InternalError(suberror: e.suberror, data: data))
        default:
            return .unknown(reason: run.pointee.exit_reason)
        }
    }
}

/// A port-I/O exit.
public struct PortIO {
    /// The I/O port.
    public let port: UInt16
    /// Bytes per access: 1, 2 or 4.
    public let size: Int
    /// Number of accesses (> 1 for `rep ins`/`outs`); the data holds `size × count` bytes.
    public let count: Int
    /// `out` (guest → device) rather than `in`.
    public let isWrite: Bool
    /// The data bytes inside `kvm_run`.
    public let data: UnsafeMutableRawPointer

    /// The first value as an integer (for tracing).
    public var value: UInt32 {
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: data, byteCount: min(size, 4)) }
        return UInt32(littleEndian: v)
    }
}

/// An MMIO exit.
public struct MMIOAccess {
    /// Guest-physical address accessed.
    public let address: UInt64
    /// Bytes accessed: 1, 2, 4 or 8.
    public let length: Int
    /// A store rather than a load.
    public let isWrite: Bool
    /// The 8-byte data field inside `kvm_run`.
    public let data: UnsafeMutableRawPointer

    /// The value as an integer (for tracing).
    public var value: UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: data, byteCount: length) }
        return UInt64(littleEndian: v)
    }
}

/// `KVM_EXIT_INTERNAL_ERROR` details.
public struct InternalError: Sendable, Equatable, CustomStringConvertible {
    /// KVM_INTERNAL_ERROR_EMULATION (1), SIMUL_EX (2), DELIVERY_EV (3), UNEXPECTED_EXIT_REASON (4), …
    public let suberror: UInt32
    /// Sub-error specific words (for emulation failures: the instruction bytes, when reported).
    public let data: [UInt64]

    public var description: String {
        let name = switch suberror {
        case 1: "instruction emulation failed"
        case 2: "exception while delivering an exception"
        case 3: "event delivery failed"
        case 4: "unexpected exit reason"
        default: "sub-error \(suberror)"
        }
        let words = data.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
        return data.isEmpty ? name : "\(name) [\(words)]"
    }
}
