import LinuxSupport
import Locking

/// A device I/O thread: waits with epoll on descriptors (ioeventfds that KVM signals when the
/// guest rings a doorbell, irqfd resample events, later tap devices) and runs each one's
/// handler. This is where the virtio data path lives — never on a vCPU thread.
///
/// Sources can be added and removed at any time, from any thread (a BAR the guest moves moves
/// its doorbells while the loop runs): epoll_ctl is safe beside a running epoll_wait, and the
/// handler table is behind a lock the loop takes once per wake-up.
public final class IOEventLoop: Sendable {
    public typealias Handler = @Sendable (_ signals: UInt64) -> Void

    /// What `add` returns, to `remove` the source again.
    public struct Token: Hashable, Sendable { let tag: UInt64 }

    private struct Source: Sendable {
        let fd: Int32
        /// Drains the descriptor and returns a count to pass on (0: nothing to do).
        let drain: @Sendable () -> UInt64
        let handler: Handler
        /// The epoll events to watch.
        var events: UInt32 = Epoll.readable
    }

    public let name: String
    private let epoll: EpollBox
    private let sources = Locked<(next: UInt64, table: [UInt64: Source])>((1, [:]))
    private let stopEvent: EventFD
    private let thread = Locked<PosixThread?>(nil)
    private static let stopTag = UInt64.max

    /// Work to run later (`schedule`), soonest first; the loop's epoll timeout is the wait
    /// until the first. A new timer wakes the loop through `timerEvent` so it can wait less.
    private struct Timer: Sendable {
        let deadline: ContinuousClock.Instant
        let action: @Sendable () -> Void
    }
    private let timers = Locked<[Timer]>([])
    private let timerEvent: EventFD
    private static let timerTag = UInt64.max - 1

    public init(name: String) throws(SystemError) {
        self.name = name
        epoll = EpollBox(try Epoll())
        stopEvent = try EventFD()
        timerEvent = try EventFD()
        try epoll.epoll.add(stopEvent.fd, tag: Self.stopTag)
        try epoll.epoll.add(timerEvent.fd, tag: Self.timerTag)
    }

    /// Runs `action` on the loop thread once `milliseconds` have passed (timers run after the
    /// ready descriptors of the same wake-up). Callable from any thread.
    public func schedule(afterMilliseconds milliseconds: Int, _ action: @escaping @Sendable () -> Void) {
        let timer = Timer(deadline: .now + .milliseconds(max(milliseconds, 0)), action: action)
        timers.withLock { list in
            let at = list.firstIndex { $0.deadline > timer.deadline } ?? list.count
            list.insert(timer, at: at)
        }
        timerEvent.signal()
    }

    /// How long epoll may wait: until the first timer is due (rounded up to a millisecond), or
    /// for ever.
    private func waitTimeout() -> Int32 {
        guard let first = timers.withLock({ $0.first?.deadline }) else { return -1 }
        let left = ContinuousClock.now.duration(to: first)
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        return Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// Runs (and forgets) every timer that is due.
    private func runDueTimers() {
        let now = ContinuousClock.now
        let due = timers.withLock { list -> [Timer] in
            let n = list.firstIndex { $0.deadline > now } ?? list.count
            defer { list.removeFirst(n) }
            return Array(list.prefix(n))
        }
        for t in due { t.action() }
    }

    /// Watches `event`; `handler` runs on the loop thread with the number of signals drained.
    @discardableResult
    public func add(_ event: EventFD, handler: @escaping Handler) throws(SystemError) -> Token {
        try add(Source(fd: event.fd, drain: { event.drain() }, handler: handler))
    }

    /// Watches any readable descriptor; `handler` (called with 1) must consume what is ready.
    @discardableResult
    public func add(descriptor fd: Int32, handler: @escaping Handler) throws(SystemError) -> Token {
        try add(Source(fd: fd, drain: { 1 }, handler: handler))
    }

    /// Watches `fd` edge-triggered for readability and writability; `handler` gets the epoll
    /// event bits and must read or write until `EAGAIN` (see `DescriptorWatcher`).
    @discardableResult
    public func add(edgesOf fd: Int32, handler: @escaping Handler) throws(SystemError) -> Token {
        try add(Source(fd: fd, drain: { 1 }, handler: handler, events: Epoll.readableOrWritableEdges))
    }

    private func add(_ source: Source) throws(SystemError) -> Token {
        let tag = sources.withLock { s in
            defer { s.next += 1 }
            s.table[s.next] = source
            return s.next
        }
        do {
            try epoll.epoll.add(source.fd, tag: tag, events: source.events)
        } catch {
            _ = sources.withLock { $0.table.removeValue(forKey: tag) }
            throw error
        }
        return Token(tag: tag)
    }

    /// Stops watching a source; after this returns its handler is not started again.
    public func remove(_ token: Token) {
        guard let source = sources.withLock({ $0.table.removeValue(forKey: token.tag) }) else { return }
        try? epoll.epoll.remove(source.fd)
    }

    /// Starts the thread. `prologue` runs on it first, before it waits for anything (the
    /// machine confines the thread there).
    public func start(prologue: @escaping @Sendable () -> Void = {}) throws(SystemError) {
        let epoll = self.epoll
        // The thread holds the loop until `stop` joins it.
        let t = try PosixThread.start(name: name) { [self] in
            prologue()
            var running = true
            while running {
                do {
                    try epoll.epoll.wait(timeoutMilliseconds: self.waitTimeout()) { tag, events in
                        if tag == Self.stopTag { running = false; return }
                        if tag == Self.timerTag { _ = self.timerEvent.drain(); return }
                        guard let s = self.sources.withLock({ $0.table[tag] }) else { return }
                        // Edge-triggered sources get the event bits; the others a drained count.
                        if s.events != Epoll.readable { s.handler(UInt64(events)); return }
                        let n = s.drain()
                        if n > 0 { s.handler(n) }
                    }
                } catch {
                    fputsError("apus: \(error); I/O thread stops")
                    running = false
                }
                if running { self.runDueTimers() }
            }
        }
        thread.withLock { $0 = t }
    }

    /// Stops and joins the thread. Idempotent.
    public func stop() {
        stopEvent.signal()
        let t = thread.withLock { t -> PosixThread? in defer { t = nil }; return t }
        t?.join()
    }
}

/// The loop's epoll set, shared by the loop thread (epoll_wait) and whoever adds or removes
/// sources (epoll_ctl): the kernel serializes those, so sharing the descriptor is safe.
private final class EpollBox: @unchecked Sendable {
    let epoll: Epoll
    init(_ epoll: consuming Epoll) { self.epoll = epoll }
}

import Virtio

/// A device's I/O thread watches its host descriptors (a tap) beside its doorbells.
extension IOEventLoop: DescriptorWatcher {
    public func watchEdges(of fd: Int32, _ handler: @escaping @Sendable (DescriptorReadiness) -> Void) throws {
        try add(edgesOf: fd) { events in
            var ready: DescriptorReadiness = []
            if UInt32(truncatingIfNeeded: events) & Epoll.writableEvent != 0 { ready.insert(.writable) }
            if UInt32(truncatingIfNeeded: events) & ~Epoll.writableEvent != 0 { ready.insert(.readable) }
            handler(ready)
        }
    }
}
