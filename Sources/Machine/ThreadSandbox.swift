import Glibc
import LinuxSupport

/// How a machine confines its threads with seccomp (`--seccomp on|off`).
public struct SeccompSettings: Sendable, Equatable {
    /// Whether threads are confined at all. Off by default in the library (tests and
    /// benchmarks choose); `apus run` turns it on unless told `--seccomp off`.
    public var enabled = false
    /// What a forbidden call gets: `.trap` reports it and kills apus; `.fail` is for tests.
    public var violation: SeccompFilter.Violation = .trap
    /// Debugging: right after a thread of this kind is confined, it makes a forbidden call
    /// (`socket`), to show what a violation looks like (`apus run --seccomp-probe`).
    public var probe: ThreadKind?

    public init(enabled: Bool = false, violation: SeccompFilter.Violation = .trap, probe: ThreadKind? = nil) {
        self.enabled = enabled
        self.violation = violation
        self.probe = probe
    }
}

/// Confines each apus thread with its kind's allow-list (`SyscallAllowList`), from inside the
/// thread, at the moment its set-up is over: a vCPU thread before its first `KVM_RUN`, an I/O
/// thread before its first `epoll_wait`, the console-input and signal threads when they start,
/// the main thread once every other thread has started (a thread inherits its creator's filter,
/// so confining the main thread earlier would stack its list onto theirs).
public struct ThreadSandbox: Sendable {
    public let settings: SeccompSettings
    let vmFD: Int32

    public init(settings: SeccompSettings, vmFD: Int32) {
        self.settings = settings
        self.vmFD = vmFD
    }

    /// Confines the calling thread as a `kind` thread named `name`; does nothing when seccomp
    /// is off. Throws if the filter cannot be installed: the caller must then stop the machine
    /// rather than run the guest unconfined.
    public func confine(_ kind: ThreadKind, name: String, vcpuFD: Int32? = nil, directoryFD: Int32? = nil) throws(SystemError) {
        guard settings.enabled else { return }
        let filter = SyscallAllowList.filter(for: kind, label: "\(name) (\(kind.rawValue) filter)", vmFD: vmFD,
                                             vcpuFD: vcpuFD, directoryFD: directoryFD, violation: settings.violation)
        try filter.apply()
        if settings.probe == kind { try probe(kind) }
    }

    /// `confine`, and if that fails, stops the machine with the reason (a guest must not run
    /// unconfined when seccomp was asked for). Returns whether the thread may go on.
    @discardableResult
    public func confineOrStop(_ kind: ThreadKind, name: String, vcpuFD: Int32? = nil, directoryFD: Int32? = nil,
                              control: MachineControl) -> Bool {
        do {
            try confine(kind, name: name, vcpuFD: vcpuFD, directoryFD: directoryFD)
            return true
        } catch {
            control.requestStop(.vmmError("\(error) (--seccomp off runs without filters)"))
            return false
        }
    }

    /// `socket` is on no list: under `.trap` this never returns.
    private func probe(_ kind: ThreadKind) throws(SystemError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        if fd >= 0 {
            close(fd)
            throw SystemError("seccomp probe: socket() was allowed on a \(kind.rawValue) thread", errno: EPERM)
        }
    }
}

extension Machine {
    /// The sandbox for this machine's threads, from `config.seccomp`.
    public var sandbox: ThreadSandbox { ThreadSandbox(settings: config.seccomp, vmFD: vm.fd) }
}
