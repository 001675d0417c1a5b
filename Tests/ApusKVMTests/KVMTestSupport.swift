import Glibc
import LinuxSupport
import Locking
import Machine
import Synchronization
import Testing

/// Shared plumbing for tests that need a real `/dev/kvm` and the guests from `guest/build`.
enum KVMTestSupport {
    /// The repository root, found from this file's path.
    static let repositoryRoot: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/ApusKVMTests/KVMTestSupport.swift
        return parts.joined(separator: "/")
    }()

    /// Whether KVM tests can run here. Without `/dev/kvm` they are skipped with a printed
    /// reason — unless `APUS_REQUIRE_KVM=1` (CI), where a missing KVM is a test failure.
    static func kvmAvailable(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if access("/dev/kvm", R_OK | W_OK) == 0 { return true }
        let why = "/dev/kvm is missing or not accessible (\(String(cString: strerror(errno))))"
        if let required = getenv("APUS_REQUIRE_KVM"), String(cString: required) == "1" {
            Issue.record("APUS_REQUIRE_KVM=1 but \(why)", sourceLocation: sourceLocation)
        } else {
            print("SKIPPED (no KVM): \(why)")
        }
        return false
    }

    /// Loads `guest/build/bare/NAME.bin`, recording a failure if `make guests` has not run.
    static func bareGuest(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8]? {
        let path = "\(repositoryRoot)/guest/build/bare/\(name).bin"
        do {
            return try readWholeFile(path)
        } catch {
            Issue.record("\(path) is missing — run `make guests` first (\(error))", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Collects what the guest prints on the serial port.
    final class Console: Sendable {
        private let bytes = Locked<[UInt8]>([])
        var sink: @Sendable (UInt8) -> Void { { b in self.bytes.withLock { $0.append(b) } } }
        var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
    }

    /// A finished bare-metal run.
    struct Run {
        let reason: StopReason
        let machine: Machine
        let board: TestBoard
        let console: String
    }

    /// Builds a test-board machine, runs `guest` on it and returns what happened. A watchdog
    /// stops a guest that hangs, so a broken interrupt path fails the test instead of hanging CI.
    /// The vCPU and I/O threads run under their seccomp allow-lists, as in `apus run`: a call
    /// missing from a list kills the test process with a line naming it.
    static func run(_ guest: String, cpus: Int = 1, memory: UInt64 = 32 << 20, timeoutSeconds: Int = 30,
                    interrupts: TestBoard.InterruptDelivery = .irqfd, seccomp: Bool = true,
                    prepare: (Machine, TestBoard) throws -> Void = { _, _ in },
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> Run? {
        guard kvmAvailable(sourceLocation: sourceLocation),
              let image = bareGuest(guest, sourceLocation: sourceLocation) else { return nil }
        let console = Console()
        var config = MachineConfig()
        config.cpus = cpus
        config.memorySize = memory
        config.consoleOutput = console.sink
        config.seccomp = SeccompSettings(enabled: seccomp)
        let machine = try Machine(config: config)
        let board = try machine.installTestBoard(interrupts: interrupts)
        try machine.loadBare(image: image)
        try prepare(machine, board)
        let watchdog = Watchdog(seconds: timeoutSeconds) { [control = machine.control] in
            control.requestStop(.vmmError("watchdog: guest '\(guest)' still running after \(timeoutSeconds) s"))
        }
        let reason = machine.run()
        watchdog.cancel()
        return Run(reason: reason, machine: machine, board: board, console: console.text)
    }
}

extension KVMTestSupport {
    /// Runs `guest` on a whole board built the way `apus run --bare` builds it:
    /// `Machine.assemble(config, board: .bare())`, so `config.devices` are the real devices on
    /// `config.transport`. The console output is captured (whatever `config.consoleOutput`
    /// says); a watchdog stops a guest that hangs.
    static func runAssembled(_ guest: String, config: MachineConfig, timeoutSeconds: Int = 60,
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> Run? {
        guard kvmAvailable(sourceLocation: sourceLocation),
              let image = bareGuest(guest, sourceLocation: sourceLocation) else { return nil }
        let console = Console()
        var config = config
        config.consoleOutput = console.sink
        let machine = try Machine.assemble(config, board: .bare())
        let board = try #require(machine.testBoard, sourceLocation: sourceLocation)
        try machine.loadBare(image: image)
        let watchdog = Watchdog(seconds: timeoutSeconds) { [control = machine.control] in
            control.requestStop(.vmmError("watchdog: guest '\(guest)' still running after \(timeoutSeconds) s"))
        }
        let reason = machine.run()
        watchdog.cancel()
        return Run(reason: reason, machine: machine, board: board, console: console.text)
    }
}

/// Calls `fire` after a timeout unless cancelled first.
final class Watchdog: Sendable {
    private final class Flag: Sendable { let cancelled = Atomic<Bool>(false) }
    private let flag = Flag()
    private let thread: PosixThread?

    init(seconds: Int, fire: @escaping @Sendable () -> Void) {
        let flag = self.flag
        thread = try? PosixThread.start(name: "watchdog") {
            for _ in 0..<(seconds * 20) {
                if flag.cancelled.load(ordering: .acquiring) { return }
                usleep(50_000)
            }
            fire()
        }
    }

    func cancel() {
        flag.cancelled.store(true, ordering: .releasing)
        thread?.join()
    }
}

/// The `apus` executable, run as a child process by tests that need a whole process (a seccomp
/// violation or a fatal signal ends it).
enum ApusProcess {
    /// `apus`, built beside this test bundle (`swift build` builds both).
    static func executable(sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let me = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let path = me.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/") + "/apus"
        guard access(path, X_OK) == 0 else {
            Issue.record("\(path) is missing: build apus first (swift build)", sourceLocation: sourceLocation)
            return nil
        }
        return path
    }

    /// A finished run: exit status as a shell reports it (128+N for signal N) and stderr.
    struct Outcome {
        let status: Int32
        let standardError: String
    }

    /// A started `apus` with `arguments`: standard input is `stdin` (default /dev/null),
    /// standard output /dev/null, standard error a file read back by `wait`. Core dumps are off
    /// (a SIGSYS or SIGSEGV death would write one where the system enables them), and so is
    /// the Swift runtime's backtracer: once KVM runs it cannot suspend KVM's worker thread in
    /// apus's thread group, and its helper process lingers, holding every descriptor it
    /// inherited (a build lock, a pty).
    final class Child {
        let pid: pid_t
        private let errorPath: String
        private var reaped = false

        init(_ executable: String, _ arguments: [String], stdin: Int32? = nil, environment: [String] = []) throws {
            var template = Array("/tmp/apus-stderr-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            try #require(fd >= 0)
            close(fd)
            errorPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            if let stdin { posix_spawn_file_actions_adddup2(&actions, stdin, 0) } else {
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            }
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_TRUNC, 0)
            // Default signal handling and nothing blocked, whatever the test runner's thread has.
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var none = sigset_t(), all = sigset_t()
            sigemptyset(&none)
            sigfillset(&all)
            posix_spawnattr_setsigmask(&attributes, &none)
            posix_spawnattr_setsigdefault(&attributes, &all)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

            // sh sets the core limit and execs apus: same process, same exit status.
            let argv = ["/bin/sh", "-c", "ulimit -c 0; exec \"$0\" \"$@\"", executable] + arguments
            var env: [String] = []
            var e = environ
            while let entry = e.pointee { env.append(String(cString: entry)); e += 1 }
            env += ["SWIFT_BACKTRACE=enable=no", Self.sanitizerOptions(&env)] + environment
            let cArgv = argv.map { strdup($0) } + [nil]
            let cEnv = env.map { strdup($0) } + [nil]
            defer { for p in cArgv + cEnv { free(p) } }
            var child: pid_t = 0
            let rc = posix_spawn(&child, "/bin/sh", &actions, &attributes, cArgv, cEnv)
            try #require(rc == 0, "posix_spawn: \(String(cString: strerror(rc)))")
            pid = child
        }

        /// TSAN_OPTIONS for the child, taken out of `env`: those given plus handle_segv=0 and
        /// handle_sigbus=0. Under `make tsan` apus is built with ThreadSanitizer, whose runtime
        /// would take SIGSEGV and SIGBUS before apus's own fatal-signal handler, which is what
        /// the tests that send them watch. No effect on a build without TSan.
        private static func sanitizerOptions(_ env: inout [String]) -> String {
            let prefix = "TSAN_OPTIONS="
            let given = env.last { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) + ":" } ?? ""
            env.removeAll { $0.hasPrefix(prefix) }
            return prefix + given + "handle_segv=0:handle_sigbus=0"
        }

        /// Waits up to `seconds` for the exit (then kills it).
        func wait(seconds: Double = 30) -> Outcome {
            let deadline = MonotonicClock.now() + seconds
            var status: Int32 = 0
            while waitpid(pid, &status, WNOHANG) == 0 {
                if MonotonicClock.now() > deadline { kill(pid, SIGKILL) }
                usleep(10_000)
            }
            reaped = true
            let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            let text = (try? readWholeFile(errorPath)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            unlink(errorPath)
            return Outcome(status: code, standardError: text)
        }

        deinit {
            if !reaped { _ = wait(seconds: 0) }
        }
    }
}
