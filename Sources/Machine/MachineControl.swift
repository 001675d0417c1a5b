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
///
/// It also pauses the machine (`pause`/`resume`, for the control socket): every vCPU thread
/// leaves `KVM_RUN` and parks (`VCPUParking`) until resumed or stopped. Both requests are one
/// word (`requests`) that a vCPU thread loads once per exit, so the exit path stays one load.
public final class MachineControl: @unchecked Sendable {
    /// `stopBit` and `pauseBit`.
    private let requests = Atomic<UInt8>(0)
    static let stopBit: UInt8 = 1
    static let pauseBit: UInt8 = 2
    let parking = VCPUParking()
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

    /// Whether a stop was requested.
    @inline(__always)
    public var isStopping: Bool { requests.load(ordering: .acquiring) & Self.stopBit != 0 }

    /// Checked by each vCPU thread once per exit: nonzero when it must stop or park. An
    /// acquiring load is a plain load on x86.
    @inline(__always)
    var pendingRequests: UInt8 { requests.load(ordering: .acquiring) }

    /// The first stop reason recorded, if any.
    public var stopReason: StopReason? { reason.withLock { $0 } }

    /// Records `why` (unless a reason is already set) and kicks every attached vCPU.
    public func requestStop(_ why: StopReason) {
        reason.withLock { if $0 == nil { $0 = why } }
        runners.withLock { list in
            requests.bitwiseOr(Self.stopBit, ordering: .acquiringAndReleasing)
            for (vcpu, thread) in list { vcpu.kick(thread: thread) }
        }
        // Parked vCPUs wake up, see the stop and end; a pause still waiting learns it failed.
        parking.stop()
        sem_post(stopped)
    }

    /// Pauses the machine: every vCPU thread leaves `KVM_RUN` (kicked) and parks.
    /// `completion` runs once, on whichever thread parks last (a vCPU thread) or on the caller's
    /// if they already are, with `.paused`; with `.resumed` or `.stopped` if a `resume` or a
    /// stop came first. Device I/O threads go on: what they complete waits in guest memory and
    /// the interrupt controller until the vCPUs run again.
    public func pause(_ completion: @escaping @Sendable (PauseOutcome) -> Void) {
        if isStopping { completion(.stopped); return }
        // The bit changes under the parking lock, with the pause it announces: a vCPU that sees
        // it always finds the pause registered (two clients racing a pause and a resume can
        // never leave the bit set with no pause to park in).
        parking.pause(completion) { requests.bitwiseOr(Self.pauseBit, ordering: .acquiringAndReleasing) }
        runners.withLock { list in
            for (vcpu, thread) in list { vcpu.kick(thread: thread) }
        }
    }

    /// Lets parked vCPUs run again. Returns false when the machine was not paused.
    @discardableResult
    public func resume() -> Bool {
        parking.resume { requests.bitwiseAnd(~Self.pauseBit, ordering: .acquiringAndReleasing) }
    }

    /// Running, pausing (asked, some vCPU not yet parked), paused, or stopping.
    public var runState: RunState {
        let r = requests.load(ordering: .acquiring)
        if r & Self.stopBit != 0 { return .stopping }
        if r & Self.pauseBit != 0 { return parking.allParked ? .paused : .pausing }
        return .running
    }

    /// Called on a vCPU thread that found `pendingRequests` nonzero: parks it while the
    /// machine is paused. Returns whether the thread must stop.
    func parkIfPaused() -> Bool {
        parking.park()
        return isStopping
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
            // A stop or pause requested before this thread was attached must still reach it.
            if requests.load(ordering: .acquiring) != 0 { vcpu.kick(thread: thread) }
        }
    }
}

/// What a machine is doing, as `apus ctl stats` reports it.
public enum RunState: String, Sendable {
    case running, pausing, paused, stopping
}

/// How a `pause` ended.
public enum PauseOutcome: Sendable, Equatable {
    /// Every vCPU thread is parked, out of `KVM_RUN`.
    case paused
    /// A `resume` came before every vCPU had parked.
    case resumed
    /// The machine stopped.
    case stopped
}

/// Where vCPU threads wait while the machine is paused: a count of the vCPU threads that
/// exist (from just before each starts until it ends) and of those parked, under a pthread
/// mutex with a condition variable (Synchronization has no condition variable; both are
/// futexes underneath, which every thread's seccomp list allows).
///
/// A pause is complete when every existing vCPU thread is parked; its completions run then,
/// outside the lock.
final class VCPUParking: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`.
    private var threads = 0
    private var parked = 0
    private var paused = false
    private var stopped = false
    private var waiting: [@Sendable (PauseOutcome) -> Void] = []

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Completions to run now that every thread is parked (call with the lock held).
    private func takeIfAllParked() -> [@Sendable (PauseOutcome) -> Void] {
        guard paused, parked == threads else { return [] }
        defer { waiting.removeAll() }
        return waiting
    }

    var allParked: Bool { locked { parked == threads } }

    /// A vCPU thread is about to be started (counted before it exists, so a pause meanwhile
    /// waits for it too: it parks before its first `KVM_RUN`).
    func threadStarting() { locked { threads += 1 } }

    /// A vCPU thread ended (or never started).
    func threadEnded() {
        let ready = locked { threads -= 1; return takeIfAllParked() }
        for c in ready { c(.paused) }
    }

    /// Registers a pause; `announce` runs under the lock once it is (it sets the request bit).
    func pause(_ completion: @escaping @Sendable (PauseOutcome) -> Void, announce: () -> Void) {
        let outcome: PauseOutcome? = locked {
            if stopped { return .stopped }
            paused = true
            announce()
            if parked == threads { return .paused }
            waiting.append(completion)
            return nil
        }
        if let outcome { completion(outcome) }
    }

    /// Ends a pause (false if there was none); `announce` runs under the lock (it clears the
    /// request bit).
    func resume(announce: () -> Void) -> Bool {
        let cancelled: [@Sendable (PauseOutcome) -> Void]? = locked {
            guard paused else { return nil }
            paused = false
            announce()
            pthread_cond_broadcast(condition)
            defer { waiting.removeAll() }
            return waiting
        }
        guard let cancelled else { return false }
        for c in cancelled { c(.resumed) }
        return true
    }

    func stop() {
        let cancelled = locked {
            stopped = true
            pthread_cond_broadcast(condition)
            defer { waiting.removeAll() }
            return waiting
        }
        for c in cancelled { c(.stopped) }
    }

    /// Parks the calling vCPU thread while the machine is paused and not stopped (checked under
    /// the lock, so a resume or stop between the check and the wait is never missed: both
    /// broadcast under it). A pause that follows a resume at once keeps a thread that had not
    /// left yet parked, so "every thread parked" stays true.
    func park() {
        pthread_mutex_lock(mutex)
        guard paused, !stopped else { pthread_mutex_unlock(mutex); return }
        parked += 1
        let ready = takeIfAllParked()
        if !ready.isEmpty {
            pthread_mutex_unlock(mutex)
            for c in ready { c(.paused) }
            pthread_mutex_lock(mutex)
        }
        while paused && !stopped { pthread_cond_wait(condition, mutex) }
        parked -= 1
        pthread_mutex_unlock(mutex)
    }
}
