import CKVM
import Glibc
import LinuxSupport

/// One virtual CPU: its descriptor, its `kvm_run` page and its register state.
///
/// Only the thread that runs the vCPU may call `run` and the register methods (KVM requires
/// vCPU ioctls from one thread at a time); `kick` is safe from any thread.
public final class VCPU: @unchecked Sendable {
    /// The vCPU index, which KVM also uses as the LAPIC ID.
    public let id: UInt32
    /// The vCPU descriptor.
    public let fd: Int32
    private let runArea: MemoryMapping
    /// The shared `kvm_run` structure (page 0 of the mapping).
    public let run: UnsafeMutablePointer<kvm_run>

    init(id: UInt32, fd: Int32, runArea: consuming MemoryMapping) {
        self.id = id
        self.fd = fd
        self.run = runArea.base.assumingMemoryBound(to: kvm_run.self)
        self.runArea = runArea
    }

    deinit { close(fd) }

    /// Enters the guest until the next exit that KVM hands to userspace, and decodes it.
    ///
    /// `EINTR` is not retried: it means a kick arrived, which the caller must look at.
    @inline(__always)
    public func runOnce() throws(KVMError) -> VCPUExit {
        if apus_ioctl_int(fd, APUS_KVM_RUN(), 0) != 0 {
            let e = apus_errno()
            if e == EINTR || e == EAGAIN {
                apus_run_set_immediate_exit(run, 0)
                return .interrupted
            }
            throw .system(SystemError("KVM_RUN on vCPU \(id)", errno: e))
        }
        return VCPUExit.decode(run)
    }

    /// Makes `KVM_RUN` return as soon as possible: sets `immediate_exit` (covers the window
    /// before the thread enters the kernel) and signals the thread (covers a thread already
    /// inside `KVM_RUN`, including one halted in the in-kernel LAPIC).
    public func kick(thread: PosixThread) {
        apus_run_set_immediate_exit(run, 1)
        thread.send(signal: kickSignal)
    }

    // MARK: Register state

    /// A vCPU ioctl whose argument is a plain C struct (BitwiseCopyable: no references inside).
    private func vcpuIoctl<T: BitwiseCopyable>(_ name: String, _ request: UInt, _ value: inout T) throws(KVMError) {
        if apus_ioctl_ptr(fd, request, &value) != 0 { throw .system(.current("\(name) on vCPU \(id)")) }
    }

    /// `KVM_GET_REGS`.
    public func registers() throws(KVMError) -> kvm_regs {
        var r = kvm_regs(); try vcpuIoctl("KVM_GET_REGS", APUS_KVM_GET_REGS(), &r); return r
    }
    /// `KVM_SET_REGS`.
    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var r = regs; try vcpuIoctl("KVM_SET_REGS", APUS_KVM_SET_REGS(), &r)
    }
    /// `KVM_GET_SREGS`: segments, control registers, EFER, descriptor tables.
    public func specialRegisters() throws(KVMError) -> kvm_sregs {
        var r = kvm_sregs(); try vcpuIoctl("KVM_GET_SREGS", APUS_KVM_GET_SREGS(), &r); return r
    }
    /// `KVM_SET_SREGS`.
    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var r = sregs; try vcpuIoctl("KVM_SET_SREGS", APUS_KVM_SET_SREGS(), &r)
    }
    /// `KVM_SET_CPUID2`: must happen before the first `KVM_RUN`.
    public func setCPUID(_ table: CPUIDTable) throws(KVMError) {
        // apus_cpuid ends in a flexible-array header, so Swift cannot prove it BitwiseCopyable;
        // it is plain C data all the same.
        var raw = table.raw
        if apus_ioctl_ptr(fd, APUS_KVM_SET_CPUID2(), &raw) != 0 { throw .system(.current("KVM_SET_CPUID2 on vCPU \(id)")) }
    }
    /// `KVM_GET_FPU`.
    public func fpu() throws(KVMError) -> kvm_fpu {
        var f = kvm_fpu(); try vcpuIoctl("KVM_GET_FPU", APUS_KVM_GET_FPU(), &f); return f
    }
    /// `KVM_SET_FPU`.
    public func setFPU(_ fpu: kvm_fpu) throws(KVMError) {
        var f = fpu; try vcpuIoctl("KVM_SET_FPU", APUS_KVM_SET_FPU(), &f)
    }
    /// `KVM_GET_LAPIC`: the 1 KiB LAPIC register page.
    public func lapic() throws(KVMError) -> kvm_lapic_state {
        var l = kvm_lapic_state(); try vcpuIoctl("KVM_GET_LAPIC", APUS_KVM_GET_LAPIC(), &l); return l
    }
    /// `KVM_SET_LAPIC`.
    public func setLAPIC(_ state: kvm_lapic_state) throws(KVMError) {
        var l = state; try vcpuIoctl("KVM_SET_LAPIC", APUS_KVM_SET_LAPIC(), &l)
    }
    /// `KVM_GET_MP_STATE`.
    public func mpState() throws(KVMError) -> UInt32 {
        var s = kvm_mp_state(); try vcpuIoctl("KVM_GET_MP_STATE", APUS_KVM_GET_MP_STATE(), &s); return s.mp_state
    }
    /// `KVM_SET_MP_STATE` (e.g. KVM_MP_STATE_RUNNABLE for an AP started without INIT/SIPI).
    public func setMPState(_ state: UInt32) throws(KVMError) {
        var s = kvm_mp_state(mp_state: state); try vcpuIoctl("KVM_SET_MP_STATE", APUS_KVM_SET_MP_STATE(), &s)
    }

    /// `KVM_SET_MSRS` for each `(index, value)`.
    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(KVMError) {
        var raw = apus_msrs()
        let n = min(msrs.count, Int(APUS_MAX_MSR_ENTRIES))
        raw.header.nmsrs = UInt32(n)
        withUnsafeMutableBytes(of: &raw.entries) { bytes in
            let entries = bytes.bindMemory(to: kvm_msr_entry.self)
            for i in 0..<n { entries[i] = kvm_msr_entry(index: msrs[i].index, reserved: 0, data: msrs[i].value) }
        }
        let set = apus_ioctl_ptr(fd, APUS_KVM_SET_MSRS(), &raw)
        // KVM returns how many MSRs it set; fewer than asked means the next one was refused.
        if set < 0 { throw .system(.current("KVM_SET_MSRS on vCPU \(id)")) }
        if set < n {
            throw .system(SystemError("KVM_SET_MSRS on vCPU \(id): MSR 0x\(String(msrs[Int(set)].index, radix: 16)) refused", errno: EINVAL))
        }
    }

    /// `KVM_GET_MSRS` for `indices`; returns the values in the same order.
    public func msrs(_ indices: [UInt32]) throws(KVMError) -> [UInt64] {
        var raw = apus_msrs()
        let n = min(indices.count, Int(APUS_MAX_MSR_ENTRIES))
        raw.header.nmsrs = UInt32(n)
        withUnsafeMutableBytes(of: &raw.entries) { bytes in
            let entries = bytes.bindMemory(to: kvm_msr_entry.self)
            for i in 0..<n { entries[i] = kvm_msr_entry(index: indices[i], reserved: 0, data: 0) }
        }
        if apus_ioctl_ptr(fd, APUS_KVM_GET_MSRS(), &raw) < 0 { throw .system(.current("KVM_GET_MSRS on vCPU \(id)")) }
        return withUnsafeBytes(of: raw.entries) { bytes in
            bytes.bindMemory(to: kvm_msr_entry.self).prefix(n).map(\.data)
        }
    }
}
