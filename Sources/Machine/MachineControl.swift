import Glibc
import KVM
import LinuxSupport
import Locking
import Synchronization

/// The machine's run state, shared by every thread: whoever first asks to stop (a device, a
/// vCPU that hit a fatal exit, a signal) sets the reason, and every vCPU is kicked out of
/// `KVM_RUN` so that its thread can see it.
///
/// The kick list is guarded by one lock that also orders the stop flag: a vCPU attached after
/// a stop is kicked at once, and once `detachAll` has run no kick can reach a thread, so the
/// threads can be joined safely (a signal sent to a joined thread is undefined behaviour).
public final class MachineControl: @unchecked Sendable {
    private let stopping = Atomic<Bool>(false)
    private let reason = Locked<StopReason?>(nil)
    private let runners = Locked<[(VCPU, PosixThread)]>([])
    /// Posted by every `requestStop`; `waitForStop` sleeps on it (no polling).
    private let stopped: UnsafeMutablePointer<sem_t>

    public init() {
        stopped = .allocate(capacity: 1)
        sem_init(stopped, 0, 0)
    }

    deinit {
        sem_destroy(stopped)
        stopped.deallocate()
    }

    /// Checked by each vCPU thread once per exit; a relaxed load costs nothing measurable.
    @inline(__always)
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// The first stop reason recorded, if any.
    public var stopReason: StopReason? { reason.withLock { $0 } }

    /// Records `why` (unless a reason is already set) and kicks every attached vCPU.
    public func requestStop(_ why: StopReason) {
        reason.withLock { if $0 == nil { $0 = why } }
        runners.withLock { list in
            stopping.store(true, ordering: .releasing)
            for (vcpu, thread) in list { vcpu.kick(thread: thread) }
        }
        sem_post(stopped)
    }

    /// Blocks until some thread has requested a stop.
    func waitForStop() {
        while !isStopping {
            if sem_wait(stopped) != 0 && errno != EINTR { return }
        }
    }

    /// Forgets every vCPU thread, after waiting for a kick in progress: later stop requests (a
    /// signal arriving as apus exits) kick nobody. Call it after `waitForStop`, before joining.
    func detachAll() {
        runners.withLock { $0.removeAll() }
    }

    /// How many vCPU threads a stop request would kick now (0 once the machine has stopped).
    public var attachedThreads: Int { runners.withLock { $0.count } }

    /// Makes `vcpu` (running on `thread`) reachable by `requestStop`.
    func attach(_ vcpu: VCPU, thread: PosixThread) {
        runners.withLock { list in
            list.append((vcpu, thread))
            // A stop requested before this thread was attached must still reach it.
            if isStopping { vcpu.kick(thread: thread) }
        }
    }
}
