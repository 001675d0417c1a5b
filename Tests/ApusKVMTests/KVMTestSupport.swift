import Glibc
import LinuxSupport
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
        private let bytes = Mutex<[UInt8]>([])
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
    static func run(_ guest: String, cpus: Int = 1, memory: UInt64 = 32 << 20, timeoutSeconds: Int = 30,
                    interrupts: TestBoard.InterruptDelivery = .irqfd,
                    prepare: (Machine, TestBoard) throws -> Void = { _, _ in },
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> Run? {
        guard kvmAvailable(sourceLocation: sourceLocation),
              let image = bareGuest(guest, sourceLocation: sourceLocation) else { return nil }
        let console = Console()
        var config = MachineConfig()
        config.cpus = cpus
        config.memorySize = memory
        config.consoleOutput = console.sink
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
