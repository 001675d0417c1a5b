import CKVM
import Glibc

/// A joinable POSIX thread running a Swift closure.
///
/// vCPUs and device I/O loops each get a dedicated OS thread: they block in `KVM_RUN` or
/// `epoll_wait`, which must never happen on a Swift concurrency executor.
public final class PosixThread: @unchecked Sendable {
    // Written once by `start` before any other thread can see it; read by `join`/`kick`.
    private var handle = pthread_t()
    private var joined = false

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private init() {}

    /// Starts `body` on a new thread named `name` (shown by `top -H` and gdb; 15 bytes max).
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) -> PosixThread {
        let thread = PosixThread()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread.handle, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemError("pthread_create \(name)", errno: rc)
        }
        _ = apus_set_thread_name(thread.handle, String(name.prefix(15)))
        return thread
    }

    /// Sends `signal` to this thread (used to kick a vCPU out of `KVM_RUN`).
    public func send(signal: Int32) {
        _ = pthread_kill(handle, signal)
    }

    /// Waits for the thread to finish. Calling it twice is harmless.
    public func join() {
        if joined { return }
        joined = true
        pthread_join(handle, nil)
    }
}

/// Installs a do-nothing handler for the vCPU kick signal, without `SA_RESTART`, so that the
/// signal makes a blocking `KVM_RUN` return `EINTR` instead of killing the process.
public func installKickSignalHandler() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(apus_kick_signal(), &action, nil)
}

/// Unblocks the kick signal on the calling thread. A thread inherits its creator's signal mask,
/// and threads created from a dispatch or test-runner worker have every signal blocked — a
/// blocked kick would leave a halted vCPU inside `KVM_RUN` forever.
public func unblockKickSignal() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, apus_kick_signal())
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// The signal number `installKickSignalHandler` prepares.
public var kickSignal: Int32 { apus_kick_signal() }
