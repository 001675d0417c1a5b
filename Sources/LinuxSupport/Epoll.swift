import CKVM
import Glibc

/// A small epoll set: register descriptors with a 64-bit tag and wait for the ready ones.
///
/// Device I/O threads sit in `wait` on their queues' ioeventfds; the tag tells them which queue
/// (or control event) woke them. Not thread-safe: one thread owns one `Epoll`.
public struct Epoll: ~Copyable {
    private let fd: OwnedFD

    public init() throws(SystemError) {
        let raw = epoll_create1(Int32(EPOLL_CLOEXEC))
        if raw < 0 { throw SystemError.current("epoll_create1") }
        fd = OwnedFD(adopting: raw)
    }

    /// Level-triggered readability: reported while there is something to read.
    public static let readable = EPOLLIN.rawValue
    /// Edge-triggered readability and writability: reported once each time the descriptor
    /// becomes readable or writable afresh (the owner reads or writes until `EAGAIN`).
    public static let readableOrWritableEdges = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLET.rawValue
    /// The `events` bits `wait` reports for a descriptor that can be written.
    public static let writableEvent = EPOLLOUT.rawValue

    /// Watches `descriptor` for `events` (readability by default), reporting `tag` when it
    /// becomes ready.
    public func add(_ descriptor: Int32, tag: UInt64, events: UInt32 = Epoll.readable) throws(SystemError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = tag
        if epoll_ctl(fd.raw, EPOLL_CTL_ADD, descriptor, &event) != 0 {
            throw SystemError.current("epoll_ctl(ADD, fd \(descriptor))")
        }
    }

    /// Stops watching `descriptor`.
    public func remove(_ descriptor: Int32) throws(SystemError) {
        if epoll_ctl(fd.raw, EPOLL_CTL_DEL, descriptor, nil) != 0 {
            throw SystemError.current("epoll_ctl(DEL, fd \(descriptor))")
        }
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and calls `body` with each ready tag and
    /// its event bits.
    /// Returns the number of ready descriptors (0 on timeout or signal interruption).
    @discardableResult
    public func wait(timeoutMilliseconds: Int32 = -1, _ body: (_ tag: UInt64, _ events: UInt32) -> Void) throws(SystemError) -> Int {
        var events = (epoll_event(), epoll_event(), epoll_event(), epoll_event(),
                      epoll_event(), epoll_event(), epoll_event(), epoll_event())
        let n = withUnsafeMutableBytes(of: &events) { raw in
            epoll_wait(fd.raw, raw.baseAddress!.assumingMemoryBound(to: epoll_event.self), 8, timeoutMilliseconds)
        }
        if n < 0 {
            if errno == EINTR { return 0 }
            throw SystemError.current("epoll_wait")
        }
        withUnsafeBytes(of: &events) { raw in
            let list = raw.bindMemory(to: epoll_event.self)
            for i in 0..<Int(n) { body(list[i].data.u64, list[i].events) }
        }
        return Int(n)
    }
}
