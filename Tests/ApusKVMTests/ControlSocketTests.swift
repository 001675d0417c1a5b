import Locking
import Glibc
import JSON
import LinuxSupport
import Machine
import Synchronization
import Testing

/// The control socket on a real machine (the `exit-forever` bare guest, every thread confined):
/// live statistics, pause and resume, garbage and misbehaving clients, several clients at once,
/// a stop while paused, and the socket file removed at the end.
@Suite(.serialized) struct ControlSocketTests {
    /// One connection speaking the protocol.
    final class Connection {
        let fd: Int32
        private var pending: [UInt8] = []

        init(_ path: String) throws { fd = try UnixSocket.connect(path) }
        deinit { close(fd) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// The next reply line, parsed (nil on timeout or a closed connection).
        func reply(timeoutSeconds: Double = 10) -> JSONValue? {
            let deadline = MonotonicClock.now() + timeoutSeconds
            while !pending.contains(0x0A) {
                guard MonotonicClock.now() < deadline else { return nil }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 100) > 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                guard n > 0 else { return nil }
                pending += buffer[0..<n]
            }
            let newline = pending.firstIndex(of: 0x0A)!
            let line = Array(pending[..<newline])
            pending.removeSubrange(...newline)
            return try? JSONParser().parse(line)
        }

        func ask(_ request: String) -> JSONValue? {
            send(request + "\n")
            return reply()
        }
    }

    static func total(_ stats: JSONValue?) -> UInt64? { stats?["exits"]?["total"]?.uint64 }

    @Test func statsPauseResumeGarbageAndAStopWhilePaused() throws {
        guard KVMTestSupport.kvmAvailable(), let image = KVMTestSupport.bareGuest("exit-forever") else { return }
        let path = "/tmp/apus-control-test-\(getpid()).sock"
        defer { unlink(path) }
        var config = MachineConfig()
        config.cpus = 2
        config.memorySize = 32 << 20
        config.seccomp = SeccompSettings(enabled: true)
        config.controlSocketPath = path
        config.consoleOutput = { _ in }
        let machine = try Machine.assemble(config, board: .bare())
        try machine.loadBare(image: image)
        let reason = Locked<StopReason?>(nil)
        let runner = try PosixThread.start(name: "control-test") { reason.withLock { $0 = machine.run() } }
        let watchdog = Watchdog(seconds: 60) { [control = machine.control] in control.requestStop(.vmmError("watchdog")) }
        defer { machine.control.requestStop(.signal(SIGTERM)); runner.join(); watchdog.cancel() }

        let client = try Connection(path)
        // Live: the counters grow while the guest runs.
        let first = client.ask(#"{"command":"stats"}"#)
        #expect(first?["ok"] == .bool(true) && first?["state"]?.string == "running", "\(first?.serialized ?? "no reply")")
        #expect(first?["vcpus"]?.uint64 == 2)
        usleep(200_000)
        let second = client.ask(#"{"command":"stats"}"#)
        #expect((Self.total(second) ?? 0) > (Self.total(first) ?? 0), "exits do not grow: \(second?.serialized ?? "")")
        #expect(second?["devices"]?.array?.contains { $0["name"]?.string == "probe-pio" && ($0["exits"]?.uint64 ?? 0) > 0 } == true)

        // Paused: every vCPU out of KVM_RUN, so the counters stand still.
        #expect(client.ask(#"{"command":"pause"}"#)?.serialized == #"{"ok":true,"state":"paused"}"#)
        let paused1 = client.ask(#"{"command":"stats"}"#)
        usleep(200_000)
        let paused2 = client.ask(#"{"command":"stats"}"#)
        #expect(paused1?["state"]?.string == "paused")
        #expect(Self.total(paused1) != nil && Self.total(paused1) == Self.total(paused2))
        #expect(client.ask(#"{"command":"pause"}"#)?["ok"] == .bool(true), "pausing a paused machine is fine")

        // Garbage, unknown commands, bad members: an error each, and nothing changes.
        for bad in ["hello", #"{"command":"reboot"}"#, #"{"command":"resume","now":1}"#, "[]", #"{"command":"shutdown"}"#] {
            let r = client.ask(bad)
            #expect(r?["ok"] == .bool(false) && r?["error"]?.string != nil, "\(bad) → \(r?.serialized ?? "no reply")")
        }
        #expect(client.ask(#"{"command":"stats"}"#)?["state"]?.string == "paused")
        // An over-long line: one error, then the connection works again after its newline.
        client.send(String(repeating: "x", count: 6000))
        #expect(client.reply()?["error"]?.string?.contains("longer than 4096") == true)
        client.send("yyy\n")
        #expect(client.ask(#"{"command":"stats"}"#)?["ok"] == .bool(true))

        // Misbehaving clients hold up nobody: one leaves mid-line, one never reads.
        do {
            let leaver = try Connection(path)
            leaver.send(#"{"command":"res"#)
        }
        let deaf = try Connection(path)
        let request = Array((#"{"command":"stats"}"# + "\n").utf8)
        var sentRequests = 0
        let flags = fcntl(deaf.fd, F_GETFL)
        _ = fcntl(deaf.fd, F_SETFL, flags | O_NONBLOCK)
        while sentRequests < 20_000,
              request.withUnsafeBytes({ Glibc.send(deaf.fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 {
            sentRequests += 1
        }
        // Several clients at once, answered while the deaf one's replies pile up.
        let others = try (0..<4).map { _ in try Connection(path) }
        for c in others { c.send(#"{"command":"stats"}"# + "\n") }
        for c in others { #expect(c.reply(timeoutSeconds: 5)?["state"]?.string == "paused") }

        // Resume: the counters move again.
        #expect(client.ask(#"{"command":"resume"}"#)?.serialized == #"{"ok":true,"state":"running"}"#)
        #expect(client.ask(#"{"command":"resume"}"#)?["error"]?.string == "the machine is not paused")
        let before = Self.total(client.ask(#"{"command":"stats"}"#)) ?? 0
        usleep(200_000)
        #expect((Self.total(client.ask(#"{"command":"stats"}"#)) ?? 0) > before)

        // A stop while paused ends the run; the socket file goes with it.
        #expect(client.ask(#"{"command":"pause"}"#)?["ok"] == .bool(true))
        machine.control.requestStop(.signal(SIGTERM))
        runner.join()
        #expect(reason.withLock { $0 } == .signal(SIGTERM))
        var st = stat()
        #expect(lstat(path, &st) != 0 && errno == ENOENT, "the socket file outlived the machine")
        #expect(machine.statistics.map { $0[.pioWrite] > 0 } == true)
    }

    @Test func aPathThatIsNotAStaleSocketStopsTheMachineBeingBuilt() throws {
        guard KVMTestSupport.kvmAvailable() else { return }
        let path = "/tmp/apus-control-file-\(getpid())"
        defer { unlink(path) }
        close(open(path, O_WRONLY | O_CREAT, 0o600))
        var config = MachineConfig()
        config.memorySize = 32 << 20
        config.controlSocketPath = path
        #expect { try Machine.assemble(config, board: .bare()) } throws: {
            "\($0)".contains("--control \(path) exists and is not a socket")
        }
    }
}
