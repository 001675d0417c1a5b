import CKVM
import Glibc
import LinuxSupport
import Locking
import Machine
import Testing

/// The allow-lists on real threads of this process, with `.fail(EPERM)` as the violation so that
/// a refused call comes back as an error instead of killing the test runner. Only calls that do
/// no harm if a filter were missing are tried (no execve, no fork).
@Suite struct SeccompFilterTests {
    /// Applies `filter` on a new thread, runs `body` there and returns its result. The filter
    /// ends with the thread.
    func onConfinedThread<T: Sendable>(_ filter: SeccompFilter, _ body: @escaping @Sendable () -> T) throws -> T {
        let outcome = Locked<Result<T, SystemError>?>(nil)
        let thread = try PosixThread.start(name: "seccomp-test") {
            do throws(SystemError) {
                try filter.apply()
                let value = body()
                outcome.withLock { $0 = .success(value) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
        }
        thread.join()
        return try #require(outcome.withLock { $0 }).get()
    }

    /// The errno of a call that returned -1, or 0 if it succeeded.
    static func errnoOf(_ result: Int) -> Int32 { result == -1 ? errno : 0 }

    static func list(_ kind: ThreadKind, vmFD: Int32 = -1, vcpuFD: Int32? = nil) -> SeccompFilter {
        SyscallAllowList.filter(for: kind, label: "test \(kind.rawValue)", vmFD: vmFD, vcpuFD: vcpuFD, violation: .fail(errno: EPERM))
    }

    @Test func aDeviceIOThreadKeepsItsEventFDsButCannotOpenSocketsOrFiles() throws {
        let event = try EventFD()
        let (drained, socketErrno, openErrno, eventfdErrno) = try onConfinedThread(Self.list(.deviceIO)) {
            event.signal(3)  // write
            let drained = event.drain()  // read
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let socketErrno = Self.errnoOf(Int(s))
            let f = open("/dev/null", O_RDONLY)
            let openErrno = Self.errnoOf(Int(f))
            let e = eventfd(0, 0)
            let eventfdErrno = Self.errnoOf(Int(e))
            return (drained, socketErrno, openErrno, eventfdErrno)
        }
        #expect(drained == 3, "eventfd write and read are on the list")
        #expect(socketErrno == EPERM && openErrno == EPERM && eventfdErrno == EPERM)
        // Filters are per thread: this (unfiltered) thread still opens files.
        let f = open("/dev/null", O_RDONLY)
        #expect(f >= 0)
        close(f)
    }

    @Test func ioctlsPassOnlyOnTheirDescriptorWithTheirRequests() throws {
        // Two eventfds stand in for a vCPU and a VM: KVM requests on them reach the kernel
        // (which answers ENOTTY), anything else is stopped by the filter (EPERM).
        let vcpu = try EventFD(), vm = try EventFD()
        let results = try onConfinedThread(Self.list(.vcpu, vmFD: vm.fd, vcpuFD: vcpu.fd)) {
            var scratch = [UInt8](repeating: 0, count: 4096)
            return scratch.withUnsafeMutableBytes { p -> [Int32] in
                [
                    Self.errnoOf(Int(apus_ioctl_int(vcpu.fd, APUS_KVM_RUN(), 0))),
                    Self.errnoOf(Int(apus_ioctl_ptr(vm.fd, APUS_KVM_IOEVENTFD(), p.baseAddress))),
                    Self.errnoOf(Int(apus_ioctl_int(vm.fd, APUS_KVM_RUN(), 0))),             // KVM_RUN on the VM
                    Self.errnoOf(Int(apus_ioctl_ptr(vcpu.fd, 0x541B, p.baseAddress))),  // FIONREAD: another request
                    Self.errnoOf(Int(apus_ioctl_ptr(vm.fd, 0x5402, p.baseAddress))),    // TCSETS past descriptor 2
                ]
            }
        }
        #expect(results == [ENOTTY, ENOTTY, EPERM, EPERM, EPERM])
    }

    @Test(arguments: ThreadKind.allCases)
    func noThreadMayMapExecutableMemory(_ kind: ThreadKind) throws {
        let (plain, executable, madeExecutable) = try onConfinedThread(Self.list(kind)) {
            let size = 4096
            let failed = UnsafeMutableRawPointer(bitPattern: -1)
            let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            let x = mmap(nil, size, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            let xErrno = x == failed ? errno : 0
            let mErrno = Self.errnoOf(Int(mprotect(p, size, PROT_READ | PROT_EXEC)))
            munmap(p, size)
            return (p != failed, xErrno, mErrno)
        }
        #expect(plain && executable == EPERM && madeExecutable == EPERM)
    }

    @Test func theControlThreadServesItsSocketButOpensNothingAndRemovesOnlyInItsDirectory() throws {
        let path = "/tmp/apus-seccomp-control-\(getpid()).sock"
        let listener = try UnixListener(path: path)
        let other = open("/tmp", O_RDONLY | O_DIRECTORY)
        defer { close(other); unlink(path) }
        let filter = SyscallAllowList.filter(for: .control, label: "test control", vmFD: -1, directoryFD: listener.directoryFD,
                                             violation: .fail(errno: EPERM))
        let results = try onConfinedThread(filter) { () -> [Int32] in
            var p = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
            return [
                Self.errnoOf(Int(poll(&p, 1, 0))),                                      // nothing pending: 0
                listener.accept() == nil ? errno : 0,                                  // EAGAIN: accept4 is allowed
                Self.errnoOf(Int(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0))),    // no new sockets
                Self.errnoOf(Int(open("/dev/null", O_RDONLY))),                        // no files
                Self.errnoOf(Int(unlinkat(other, "apus-no-such-file", 0))),            // not in another directory
                Self.errnoOf(Int(unlinkat(listener.directoryFD, "apus-no-such-file", 0))), // its own: ENOENT
            ]
        }
        #expect(results == [0, EAGAIN, EPERM, EPERM, EPERM, ENOENT])
    }

    @Test func signalsStayInsideApus() throws {
        let (own, other) = try onConfinedThread(Self.list(.main)) {
            // Signal 0 only checks that the target exists. pthread_kill is tgkill(apus, …).
            let own = pthread_kill(pthread_self(), 0)
            let other = Self.errnoOf(Int(kill(1, 0)))
            return (own, other)
        }
        #expect(own == 0 && other == EPERM)
        // tgkill itself is allowed only with apus's own PID as its first argument.
        let tgkill = Self.list(.vcpu).rules.filter { $0.syscall == "tgkill" }
        #expect(tgkill.map(\.conditions) == [[.equals(0, UInt32(bitPattern: getpid()))]])
    }

    @Test func anUnknownNameIsRefusedBeforeAnythingIsConfined() throws {
        var filter = SeccompFilter(label: "typo", violation: .fail(errno: EPERM))
        filter.allow(["write", "no_such_call"])
        #expect(throws: SystemError.self) { try onConfinedThread(filter) { 0 } }
    }

    @Test func everyThreadMayRestoreTheTerminalAndReport() {
        // What the fatal-signal handler needs on whichever thread a signal lands.
        for kind in ThreadKind.allCases {
            let f = Self.list(kind)
            for call in ["write", "getpid", "gettid", "tgkill", "rt_sigreturn", "clock_nanosleep", "exit_group"] {
                #expect(f.allows(call), "\(kind.rawValue) lacks \(call)")
            }
            #expect(f.rules.contains { $0.syscall == "ioctl" && $0.conditions == [.equals(0, 0), .equals(1, 0x5402)] })
            // getppid: the SIGSYS handler dies by calling it (see die_of_sigsys).
            for forbidden in ["execve", "clone", "clone3", "fork", "socket", "openat", "open", "ptrace", "mount", "kill", "getppid"] {
                #expect(!f.allows(forbidden), "\(kind.rawValue) allows \(forbidden)")
            }
        }
    }
}
