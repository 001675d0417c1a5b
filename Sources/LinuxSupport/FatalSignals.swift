import CFatalSignal

/// What happens when apus dies of a signal: a crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE), an
/// abort, a forbidden system call under seccomp (SIGSYS), or a signal sent from outside
/// (SIGQUIT, SIGUSR1, …). One handler, written in C because it runs in signal context, puts
/// the terminal back (see `RawTerminal`), writes one line saying what happened and in which
/// thread, and lets the process die of the same signal (exit status 128+N; a core dump where
/// the system enables them).
///
/// SIGINT, SIGTERM and SIGHUP are not fatal here: `SignalWatcher` turns them into a clean stop.
/// SIGKILL and SIGSTOP cannot be caught; after those, `stty sane` repairs the terminal.
public enum FatalSignals {
    /// Installs the handlers, once per process. Call it after the Swift runtime installed its
    /// own (at start-up), so that a crash is still passed on to its backtracer.
    public static func install() {
        _ = apus_fatal_install_handlers()
    }

    /// Marks the calling thread as confined by seccomp. A crash on any other thread is passed
    /// on to the handler installed before (the Swift runtime's backtracer, which prints a
    /// symbolicated backtrace); on a confined thread it is not: the backtracer starts a helper
    /// process, which no filter allows, so its report would name a forbidden `clone` instead.
    static func markCurrentThreadConfined() {
        apus_fatal_mark_thread_confined()
    }

    /// Puts the terminal that `RawTerminal` switched to raw mode back as it was, with the
    /// same async-signal-safe call the handler uses. Returns whether there was one to restore.
    @discardableResult
    public static func restoreTerminalNow() -> Bool {
        apus_fatal_restore_terminal() == 1
    }

    /// Names the calling thread in fatal-signal reports (e.g. "apus-vcpu0 (vcpu filter)").
    public static func labelCurrentThread(_ label: String) {
        apus_fatal_label_thread(label)
    }

    /// Tells the handler the name of system call `number`, for the seccomp report: the
    /// handler cannot look names up itself (libseccomp's lookup allocates).
    static func nameSyscall(_ number: Int32, _ name: String) {
        apus_fatal_name_syscall(number, name)
    }
}
