import Glibc
import LinuxSupport

/// Turns SIGINT, SIGTERM and SIGHUP into a clean machine stop (terminal restored, statistics
/// printed, exit status 128+N) instead of killing the process mid-flight.
///
/// The signals are blocked in every thread (threads started afterwards inherit the mask) and
/// collected by one thread with `sigwait`, so no Swift code runs in a signal handler.
public enum SignalWatcher {
    /// Starts the watcher thread, which confines itself with the main thread's allow-list
    /// (`sandbox`) before it waits.
    public static func start(control: MachineControl, sandbox: ThreadSandbox? = nil) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let watched = set
        _ = try? PosixThread.start(name: "apus-signals") {
            guard sandbox?.confineOrStop(.main, name: "apus-signals", control: control) ?? true else { return }
            var mask = watched
            var signal: Int32 = 0
            if sigwait(&mask, &signal) == 0 {
                control.requestStop(.signal(signal))
            }
        }
    }
}
