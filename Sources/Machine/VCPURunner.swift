import CKVM
import DeviceBus
import KVM

/// The loop one vCPU thread runs: enter the guest, decode why it came back, hand the access to
/// the right bus, repeat — until the machine is told to stop.
///
/// This is the hot path of every exit that reaches userspace. It allocates nothing: the exit
/// is decoded into an enum holding pointers into `kvm_run`, the bus lookup is a binary search
/// over an immutable array, and statistics are counters only this thread writes (readable
/// live by others, without locks: `LiveExitCounters`). A stop or pause request costs one load
/// per exit to notice.
struct VCPURunner {
    let vcpu: VCPU
    let pio: Bus
    let mmio: Bus
    let control: MachineControl
    let tracer: ExitTracer?
    let stats: LiveExitCounters

    func run() {
        while true {
            let requests = control.pendingRequests
            if requests != 0 {
                if requests & MachineControl.stopBit != 0 { break }
                // Paused: out of KVM_RUN until resumed (or stopped while parked).
                if control.parkIfPaused() { break }
                continue
            }
            let exit: VCPUExit
            do {
                exit = try vcpu.runOnce()
            } catch {
                control.requestStop(.vmmError(error.description))
                break
            }
            switch exit {
            case let .io(io):
                handle(io)
            case let .mmio(access):
                handle(access)
            case .interrupted:
                stats.count(.interrupted)
            case .shutdown:
                stats.count(.other)
                tracer?.traceOther(vcpu: vcpu.id, "SHUTDOWN (triple fault)")
                control.requestStop(.guestCrash(CrashReport.describe(vcpu, what: "triple fault (KVM_EXIT_SHUTDOWN)")))
            case .halt:
                stats.count(.other)
                control.requestStop(.guestCrash(CrashReport.describe(vcpu, what: "hlt reached userspace (no in-kernel LAPIC?)")))
            case let .systemEvent(type):
                stats.count(.other)
                switch Int32(type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN: control.requestStop(.powerOff)
                case KVM_SYSTEM_EVENT_RESET: control.requestStop(.reboot)
                default: control.requestStop(.guestCrash("system event \(type) (KVM_EXIT_SYSTEM_EVENT)"))
                }
            case let .failEntry(reason, cpu):
                stats.count(.other)
                control.requestStop(.guestCrash(CrashReport.describe(
                    vcpu, what: "the CPU refused to enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason 0x\(String(reason, radix: 16)), cpu \(cpu))")))
            case let .internalError(e):
                stats.count(.other)
                control.requestStop(.guestCrash(CrashReport.describe(vcpu, what: "KVM internal error: \(e)")))
            case let .unknown(reason):
                stats.count(.other)
                control.requestStop(.guestCrash(CrashReport.describe(vcpu, what: "unhandled exit reason \(reason)")))
            }
        }
    }

    @inline(__always)
    private func handle(_ io: PortIO) {
        var entry: Bus.Entry?
        // `rep ins/outs` deliver `count` accesses in one exit, back to back in the data page.
        for i in 0..<io.count {
            let chunk = io.data + i * io.size
            if io.isWrite {
                entry = pio.write(UInt64(io.port), data: UnsafeRawBufferPointer(start: chunk, count: io.size))
            } else {
                entry = pio.read(UInt64(io.port), data: UnsafeMutableRawBufferPointer(start: chunk, count: io.size))
            }
        }
        if let entry {
            stats.count(io.isWrite ? .pioWrite : .pioRead)
            stats.countPIO(device: entry.index)
        } else {
            stats.count(.pioUnclaimed)
        }
        tracer?.tracePIO(vcpu: vcpu.id, io, entry: entry)
    }

    @inline(__always)
    private func handle(_ access: MMIOAccess) {
        let entry: Bus.Entry?
        if access.isWrite {
            entry = mmio.write(access.address, data: UnsafeRawBufferPointer(start: access.data, count: access.length))
        } else {
            entry = mmio.read(access.address, data: UnsafeMutableRawBufferPointer(start: access.data, count: access.length))
        }
        if let entry {
            stats.count(access.isWrite ? .mmioWrite : .mmioRead)
            stats.countMMIO(device: entry.index)
        } else {
            stats.count(.mmioUnclaimed)
        }
        tracer?.traceMMIO(vcpu: vcpu.id, access, entry: entry)
    }
}

/// The one-paragraph diagnosis printed when a guest dies: what happened, and the CPU state a
/// person needs to see why (where it was, and how its paging and mode were set up).
enum CrashReport {
    static func describe(_ vcpu: VCPU, what: String) -> String {
        guard let r = try? vcpu.registers(), let s = try? vcpu.specialRegisters() else {
            return "\(what) on vCPU \(vcpu.id); registers unavailable"
        }
        func h(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        // On AMD SVM, KVM reinitializes a vCPU after a shutdown intercept (the VMCB is undefined
        // then), so the registers read as just reset and the faulting state is lost.
        let resetLooking = r.rip == 0xFFF0 && s.cs.selector == 0xF000
        let caveat = resetLooking ? " (this is the reset state: on AMD SVM, KVM reinitializes the vCPU after a shutdown, so the faulting state is lost)" : ""
        let mode = s.efer & (1 << 10) != 0 ? "long mode" : (s.cr0 & 1 != 0 ? "protected mode" : "real mode")
        return "\(what) on vCPU \(vcpu.id) in \(mode): RIP=\(h(r.rip)) RSP=\(h(r.rsp)) RFLAGS=\(h(r.rflags)) "
            + "CS=\(h(UInt64(s.cs.selector))) CR0=\(h(s.cr0)) CR2=\(h(s.cr2)) CR3=\(h(s.cr3)) CR4=\(h(s.cr4)) "
            + "EFER=\(h(s.efer)) IDT=\(h(s.idt.base))/\(h(UInt64(s.idt.limit))) GDT=\(h(s.gdt.base))/\(h(UInt64(s.gdt.limit)))" + caveat
    }
}
