import Glibc

/// A program started in the background whose standard output is read line by line, each line
/// stamped with the monotonic time it arrived. `apus bench boot` and `apus bench blk` use it to
/// watch a VMM's serial console: the time a marker line appears is the measurement.
///
/// Standard input is /dev/null; standard error goes to a file, so a failed run can be diagnosed
/// without mixing the VMM's messages into the console being parsed.
public final class ChildProcess {
    /// One line of the child's standard output, without its line ending.
    public struct Line {
        public let text: String
        /// `MonotonicClock.now()` when the line was read.
        public let time: Double
    }

    public let pid: pid_t
    /// `MonotonicClock.now()` just before the child was spawned.
    public let startTime: Double
    private let output: OwnedFD
    private var pending: [UInt8] = []
    private var endOfOutput = false
    private var reapedStatus: Int32?

    /// Starts `path` (searched in `PATH` when it has no slash) with `arguments`.
    public init(_ path: String, _ arguments: [String], standardError: String) throws(SystemError) {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw .current("pipe") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        posix_spawn_file_actions_addopen(&actions, 2, standardError, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        // The child starts with no signal blocked and default handlers, whatever this process
        // (or the thread spawning it) blocked: otherwise `terminate()`'s SIGTERM could be held
        // back and every stop would wait for SIGKILL.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        startTime = MonotonicClock.now()
        let rc = argv.withUnsafeBufferPointer {
            posix_spawnp(&child, path, &actions, &attributes, UnsafeMutablePointer(mutating: $0.baseAddress!), environ)
        }
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            throw SystemError("start \(path)", errno: rc)
        }
        pid = child
        output = OwnedFD(adopting: pipeFDs[0])
    }

    deinit {
        if reapedStatus == nil {
            kill(pid, SIGKILL)
            _ = try? waitForExit()
        }
    }

    /// The next line of output, waiting until `deadline` (a `MonotonicClock` time); nil when the
    /// output ended or the deadline passed first (`outputEnded` tells which).
    public func nextLine(before deadline: Double) throws(SystemError) -> Line? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var bytes = pending[..<newline]
                if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
                let line = Line(text: String(decoding: bytes, as: UTF8.self), time: MonotonicClock.now())
                pending.removeSubrange(...newline)
                return line
            }
            if endOfOutput {
                guard !pending.isEmpty else { return nil }
                defer { pending.removeAll() }
                return Line(text: String(decoding: pending, as: UTF8.self), time: MonotonicClock.now())
            }
            let remaining = deadline - MonotonicClock.now()
            guard remaining > 0 else { return nil }
            var poller = pollfd(fd: output.raw, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining * 1000, 60_000)) + 1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .current("poll")
            }
            if ready == 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { read(output.raw, $0.baseAddress!, $0.count) }
            if n > 0 {
                pending += buffer[..<n]
            } else if n == 0 {
                endOfOutput = true
            } else if errno != EINTR && errno != EAGAIN {
                throw .current("read")
            }
        }
    }

    /// True once the child closed its standard output (normally: it exited).
    public var outputEnded: Bool { endOfOutput && pending.isEmpty }

    /// Waits for the child to exit: its exit status, or 128 + the signal that killed it.
    @discardableResult
    public func waitForExit() throws(SystemError) -> Int32 {
        if let reapedStatus { return reapedStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw .current("waitpid") }
        }
        let result = exitStatus(fromWaitStatus: status)
        reapedStatus = result
        return result
    }

    /// Stops the child: SIGTERM, then SIGKILL if it has not exited after `grace` seconds.
    @discardableResult
    public func terminate(grace: Double = 5) throws(SystemError) -> Int32 {
        if let reapedStatus { return reapedStatus }
        kill(pid, SIGTERM)
        let deadline = MonotonicClock.now() + grace
        var status: Int32 = 0
        while MonotonicClock.now() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                let result = exitStatus(fromWaitStatus: status)
                reapedStatus = result
                return result
            }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        return try waitForExit()
    }
}

/// Seconds on `CLOCK_MONOTONIC`: for intervals, never for dates.
public enum MonotonicClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
