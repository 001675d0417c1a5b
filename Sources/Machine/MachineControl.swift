import KVM
import LinuxSupport
import Synchronization

/// The machine's run state, shared by every thread: whoever first asks to stop (a device, a
/// vCPU that hit a fatal exit, a signal) sets the reason, and every vCPU is kicked out of
/// `KVM_RUN` so that its thread can see it.
public final class MachineControl: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let reason = Mutex<StopReason?>(nil)
    private let runners = Mutex<[(VCPU, PosixThread)]>([])

    public init() {}

    /// Checked by each vCPU thread once per exit; a relaxed load costs nothing measurable.
    @inline(__always)
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// The first stop reason recorded, if any.
    public var stopReason: StopReason? { reason.withLock { $0 } }

    /// Records `why` (unless a reason is already set) and kicks every vCPU.
    public func requestStop(_ why: StopReason) {
        reason.withLock { if $0 == nil { $0 = why } }
        stopping.store(true, ordering: .releasing)
        runners.withLock { list in
            for (vcpu, thread) in list { vcpu.kick(thread: thread) }
        }
    }

    /// Makes `vcpu` (running on `thread`) reachable by `requestStop`.
    func attach(_ vcpu: VCPU, thread: PosixThread) {
        runners.withLock { $0.append((vcpu, thread)) }
        // A stop requested before this thread was attached must still reach it.
        if isStopping { vcpu.kick(thread: thread) }
    }
}
