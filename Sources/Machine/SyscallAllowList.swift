import CKVM
import Glibc
import LinuxSupport

/// The kinds of apus thread, each confined by its own seccomp allow-list once its set-up is
/// over (see `ThreadSandbox`).
public enum ThreadKind: String, Sendable, CaseIterable {
    /// A vCPU thread: `KVM_RUN` and the exits it hands to the devices.
    case vcpu
    /// A device I/O thread (one per virtio device, the board's `apus-io`) and the console-input
    /// thread: epoll, eventfds, the disk image, getrandom, typed input.
    case deviceIO = "io"
    /// The main thread once the guest runs, and the signal watcher: wait for the stop, tear
    /// down, report, exit.
    case main
    /// The control socket's thread (`--control`): accept clients, read requests, write replies.
    case control
}

/// What each kind of apus thread may ask of the kernel while the guest runs. Everything else —
/// open, socket, execve, fork/clone, ptrace, mount, bpf, a KVM ioctl on another descriptor or
/// with another request — is a violation.
///
/// The lists come from running the real workloads under `strace -f` (bare guests driving
/// virtio-blk and virtio-rng over virtio-mmio and virtio-pci, with port and MMIO doorbells; SMP;
/// `--trace exits --stats`; the Linux end-to-end scenarios) and from reading each thread's code.
/// docs/security.md ("seccomp") gives the reason for every entry: keep the two in step.
public enum SyscallAllowList {
    /// The filter for a `kind` thread. `vcpuFD` is the vCPU a vCPU thread runs.
    /// `directoryFD` is the directory of the control socket, for a control thread.
    public static func filter(for kind: ThreadKind, label: String, vmFD: Int32, vcpuFD: Int32? = nil,
                              directoryFD: Int32? = nil,
                              violation: SeccompFilter.Violation = .trap) -> SeccompFilter {
        var f = SeccompFilter(label: label, violation: violation)
        addEveryThread(to: &f)
        switch kind {
        case .vcpu: addVCPU(to: &f, vcpuFD: vcpuFD ?? -1, vmFD: vmFD)
        case .deviceIO: addDeviceIO(to: &f, vmFD: vmFD)
        case .main: addMain(to: &f)
        case .control: addControl(to: &f, directoryFD: directoryFD ?? -1)
        }
        return f
    }

    static let protExec = UInt64(PROT_EXEC)
    /// `ioctl(fd, TCSETS, …)` sets a terminal (asm-generic/ioctls.h); `RawTerminal` restores
    /// with it alone (`apus_terminal_apply`), not with glibc's tcsetattr, which adds TCGETS.
    static let tcsets: UInt32 = 0x5402

    /// What glibc, the Swift runtime and the fatal-signal handler need on any thread.
    static func addEveryThread(to f: inout SeccompFilter) {
        // Locks (Synchronization.Mutex is a PI futex owned by the thread id), joins, semaphores.
        f.allow(["futex", "gettid"])
        // Memory: malloc's arenas and the Swift runtime. Never executable: no thread of apus
        // creates code at run time, so a filtered thread cannot map or make pages executable.
        f.allow("mmap", .hasNone(2, of: protExec))
        f.allow("mprotect", .hasNone(2, of: protExec))
        f.allow(["munmap", "madvise", "brk", "mremap"])
        // Diagnostics on stderr, console output, eventfd signals (each 8-byte write is a kick
        // to an I/O thread or an interrupt through an irqfd).
        f.allow("write")
        // An object's last reference can drop on any thread and its deinit closes a descriptor;
        // without open, socket or dup there is no way to get a descriptor back.
        f.allow("close")
        // Signals inside apus only: kicking a vCPU (pthread_kill), abort(), the fatal handler
        // sending the signal again. tgkill's first argument must be apus's own PID.
        f.allow("tgkill", .equals(0, UInt32(bitPattern: getpid())))
        f.allow(["getpid", "rt_sigprocmask", "rt_sigreturn", "restart_syscall"])
        // Time, where the vDSO falls back to the kernel (a clock source without vDSO support,
        // as in nested guests), and sleeps.
        f.allow(["clock_gettime", "gettimeofday", "clock_nanosleep", "nanosleep"])
        // Lazily seeded hashing and random numbers; reveals nothing, changes nothing.
        f.allow("getrandom")
        // RawTerminal, the fatal-signal handler and atexit put a raw terminal back; only the
        // standard descriptors and only TCSETS (not TIOCSTI, which could type into the shell).
        for fd: UInt32 in 0...2 { f.allow("ioctl", .equals(0, fd), .equals(1, tcsets)) }
        // A thread's end (exit) and the process's (exit_group).
        f.allow(["exit", "exit_group"])
        // Under ThreadSanitizer only (make tsan): its runtime's internal spin locks (the stack
        // depot every allocation goes through) yield after a few spins. Rare, so a list from
        // strace misses it, but on a loaded machine it happens, on any thread.
        if SanitizerRuntime.threadSanitizer { f.allow("sched_yield") }
    }

    /// A vCPU thread: KVM_RUN on its own vCPU and what the devices do on an exit.
    static func addVCPU(to f: inout SeccompFilter, vcpuFD: Int32, vmFD: Int32) {
        let vcpu = UInt32(bitPattern: vcpuFD), vm = UInt32(bitPattern: vmFD)
        // KVM_RUN; registers for the crash report of a guest that died.
        for request in [APUS_KVM_RUN(), APUS_KVM_GET_REGS(), APUS_KVM_GET_SREGS()] {
            f.allow("ioctl", .equals(0, vcpu), .equals(1, UInt32(request)))
        }
        // Exits that rewire the VM: the UART's interrupt line (KVM_IRQ_LINE), PCI BARs moving
        // their doorbells (KVM_IOEVENTFD), the guest programming MSI-X (KVM_SET_GSI_ROUTING).
        for request in [APUS_KVM_IRQ_LINE(), APUS_KVM_IOEVENTFD(), APUS_KVM_SET_GSI_ROUTING()] {
            f.allow("ioctl", .equals(0, vm), .equals(1, UInt32(request)))
        }
        // DRIVER_OK and reset of a virtio-net device: the tap's header size and offloads, and with
        // vhost the kernel's rings (features, memory table, ring layout, eventfds, the tap as
        // backend; a reset detaches it). Request numbers of the tun and vhost families only.
        for request in [apus_tunsetvnethdrsz(), apus_tunsetoffload(), apus_tunsetqueue(), apus_vhost_request_set_features(),
                        apus_vhost_request_set_mem_table(), apus_vhost_request_set_vring_num(),
                        apus_vhost_request_set_vring_base(), apus_vhost_request_set_vring_addr(),
                        apus_vhost_request_set_vring_kick(), apus_vhost_request_set_vring_call(),
                        apus_vhost_request_net_set_backend()] {
            f.allow("ioctl", .equals(1, UInt32(truncatingIfNeeded: request)))
        }
    }

    /// A device I/O thread, or the console-input thread.
    static func addDeviceIO(to f: inout SeccompFilter, vmFD: Int32) {
        let vm = UInt32(bitPattern: vmFD)
        // The loop: wait, drain eventfds (read), change its sources.
        f.allow(["epoll_wait", "epoll_pwait", "epoll_ctl", "read"])
        // Console input: poll stdin with a timeout.
        f.allow(["poll", "ppoll"])
        // virtio-blk: data (one preadv/pwritev per request), FLUSH, DISCARD and WRITE_ZEROES.
        f.allow(["preadv", "pwritev", "fdatasync", "fallocate"])
        // virtio-net: frames to the tap (writev from guest memory; they come back with read,
        // above); the guest offloads and the queue pairs the driver switches through its
        // control queue.
        f.allow("writev")
        for request in [apus_tunsetoffload(), apus_tunsetqueue()] { f.allow("ioctl", .equals(1, UInt32(request))) }
        // Typed input raises the UART's interrupt line; the test board injects an MSI directly.
        for request in [APUS_KVM_IRQ_LINE(), APUS_KVM_SIGNAL_MSI()] {
            f.allow("ioctl", .equals(0, vm), .equals(1, UInt32(request)))
        }
    }

    /// The main thread while the guest runs and after it stopped; the signal watcher.
    static func addMain(to f: inout SeccompFilter) {
        // The signal watcher's sigwait.
        f.allow("rt_sigtimedwait")
    }

    /// The control socket's thread. Its socket was bound and its directory opened before it
    /// was confined: it can take connections on what it has, never make a new socket or open
    /// a file.
    static func addControl(to f: inout SeccompFilter, directoryFD: Int32) {
        // The loop: wait on the listener, the clients and its wake-up eventfd; take a
        // connection; read requests; drain the eventfd. Replies go out with send(MSG_NOSIGNAL),
        // which is sendto.
        f.allow(["poll", "ppoll", "accept4", "read", "sendto"])
        // At the end it removes its socket file, checking first that the name still is that
        // socket: only in the socket's own directory, through the descriptor opened at bind.
        let directory = UInt32(bitPattern: directoryFD)
        f.allow("newfstatat", .equals(0, directory))
        f.allow("unlinkat", .equals(0, directory))
    }
}
