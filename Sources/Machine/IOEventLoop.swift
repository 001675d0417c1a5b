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
    }

    public let name: String
    private let epoll: EpollBox
    private let sources = Locked<(next: UInt64, table: [UInt64: Source])>((1, [:]))
    private let stopEvent: EventFD
    private let thread = Locked<PosixThread?>(nil)
    private static let stopTag = UInt64.max

    public init(name: String) throws(SystemError) {
        self.name = name
        epoll = EpollBox(try Epoll())
        stopEvent = try EventFD()
        try epoll.epoll.add(stopEvent.fd, tag: Self.stopTag)
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

    private func add(_ source: Source) throws(SystemError) -> Token {
        let tag = sources.withLock { s in
            defer { s.next += 1 }
            s.table[s.next] = source
            return s.next
        }
        do {
            try epoll.epoll.add(source.fd, tag: tag)
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
                    try epoll.epoll.wait { tag in
                        if tag == Self.stopTag { running = false; return }
                        guard let s = self.sources.withLock({ $0.table[tag] }) else { return }
                        let n = s.drain()
                        if n > 0 { s.handler(n) }
                    }
                } catch {
                    fputsError("apus: \(error); I/O thread stops")
                    running = false
                }
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
