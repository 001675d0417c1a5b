import DeviceBus
import Glibc
import LinuxSupport
import KVM

/// `--trace exits`: one readable line per exit, naming the device and register touched.
///
/// ```
/// vcpu0  PIO  out  port 0x3f8  1 byte   0x48        → serial0 THR
/// vcpu0  MMIO read addr 0xd0000000 4 bytes 0x2    → probe-mmio ECHO
/// ```
/// Only built when tracing is on; the untraced path pays one branch.
struct ExitTracer: Sendable {
    let pio: Bus
    let mmio: Bus

    func tracePIO(vcpu: UInt32, _ io: PortIO, entry: Bus.Entry?) {
        let dir = io.isWrite ? "out " : "in  "
        let count = io.count > 1 ? " ×\(io.count)" : ""
        let target = describe(entry, address: UInt64(io.port), isWrite: io.isWrite)
        emit("vcpu\(vcpu)  PIO  \(dir) port 0x\(String(io.port, radix: 16))  \(io.size)B\(count)  = 0x\(String(io.value, radix: 16))  → \(target)")
    }

    func traceMMIO(vcpu: UInt32, _ access: MMIOAccess, entry: Bus.Entry?) {
        let dir = access.isWrite ? "write" : "read "
        let target = describe(entry, address: access.address, isWrite: access.isWrite)
        emit("vcpu\(vcpu)  MMIO \(dir) addr 0x\(String(access.address, radix: 16))  \(access.length)B  = 0x\(String(access.value, radix: 16))  → \(target)")
    }

    func traceOther(vcpu: UInt32, _ what: String) {
        emit("vcpu\(vcpu)  \(what)")
    }

    private func describe(_ entry: Bus.Entry?, address: UInt64, isWrite: Bool) -> String {
        guard let entry else { return "(no device: \(isWrite ? "write dropped" : "reads all ones"))" }
        let offset = address - entry.base
        if let reg = entry.device.registerName(offset: offset, isWrite: isWrite) {
            return "\(entry.device.name) \(reg)"
        }
        return "\(entry.device.name) +0x\(String(offset, radix: 16))"
    }

    private func emit(_ line: String) {
        // One write(2) per line, so lines from different vCPUs do not interleave.
        fputsError("[trace] " + line)
    }
}
