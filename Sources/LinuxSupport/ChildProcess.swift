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
        /// `MonotonicClock.now()` when the read that completed the line returned.
        public let time: Double
    }

    /// Longer output without a newline is handed out in pieces of this size, so a child that
    /// never ends a line cannot make the reader's buffer grow without bound.
    public static let maxLineLength = 64 * 1024

    public let pid: pid_t
    /// `MonotonicClock.now()` just before the child was spawned.
    public let startTime: Double
    private let output: OwnedFD
    private var pending: [UInt8] = []
    /// Bytes of `pending` already searched for a newline.
    private var scanned = 0
    /// When the last read returned: every complete line in `pending` was completed by it.
    private var lastRead = 0.0
    private var endOfOutput = false
    private var reapedStatus: Int32?

    /// Starts `path` (searched in `PATH` when it has no slash) with `arguments`.
    public init(_ path: String, _ arguments: [String], standardError: String) throws(SystemError) {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw .current("pipe") }
        // Not inherited by other children this process starts (the child gets its end by dup2).
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, standardError, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o644)

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
        lastRead = startTime
    }

    deinit {
        if reapedStatus == nil {
            kill(pid, SIGKILL)
            _ = try? waitForExit(before: MonotonicClock.now() + 5)
        }
    }

    /// The next line of output, waiting until `deadline` (a `MonotonicClock` time); nil when the
    /// output ended or the deadline passed first (`outputEnded` tells which).
    public func nextLine(before deadline: Double) throws(SystemError) -> Line? {
        while true {
            if let line = takeLine() { return line }
            let remaining = deadline - MonotonicClock.now()
            guard !endOfOutput, remaining > 0 else { return nil }
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
                lastRead = MonotonicClock.now()
            } else if n == 0 {
                endOfOutput = true
            } else if errno != EINTR && errno != EAGAIN {
                throw .current("read")
            }
        }
    }

    /// The first complete line of `pending` (or a piece of `maxLineLength` bytes, or the
    /// unterminated rest once the output ended), removed from it; nil when there is none yet.
    private func takeLine() -> Line? {
        let newline = pending[scanned...].firstIndex(of: UInt8(ascii: "\n"))
        let end: Int
        if let newline {
            end = newline + 1
        } else if pending.count >= Self.maxLineLength {
            end = Self.maxLineLength
        } else if endOfOutput && !pending.isEmpty {
            end = pending.count
        } else {
            scanned = pending.count
            return nil
        }
        var bytes = pending[..<end]
        if bytes.last == UInt8(ascii: "\n") { bytes = bytes.dropLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        let line = Line(text: String(decoding: bytes, as: UTF8.self), time: lastRead)
        pending.removeSubrange(..<end)
        scanned = 0
        return line
    }

    /// True once the child closed its standard output (normally: it exited).
    public var outputEnded: Bool { endOfOutput && pending.isEmpty }

    /// Waits until `deadline` for the child to exit, then kills it (SIGKILL) and reaps it: its
    /// exit status, or 128 + the signal that ended it.
    @discardableResult
    public func waitForExit(before deadline: Double) throws(SystemError) -> Int32 {
        if let reapedStatus { return reapedStatus }
        var status: Int32 = 0
        var killed = false
        while true {
            if !killed && MonotonicClock.now() >= deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            // Once killed, the exit is certain: wait for it; before, poll.
            let r = waitpid(pid, &status, killed ? 0 : WNOHANG)
            if r == pid { break }
            if r < 0 {
                guard errno == EINTR else { throw .current("waitpid") }
                continue
            }
            usleep(10_000)
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
        return try waitForExit(before: MonotonicClock.now() + grace)
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
