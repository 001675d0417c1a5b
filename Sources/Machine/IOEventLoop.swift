import LinuxSupport
import Synchronization

/// A device I/O thread: waits on eventfds (ioeventfds that KVM signals when the guest rings a
/// doorbell) with epoll and runs each one's handler. This is where the virtio data path lives —
/// never on a vCPU thread.
public final class IOEventLoop: Sendable {
    public typealias Handler = @Sendable (_ signals: UInt64) -> Void

    private struct Source: Sendable {
        let event: EventFD
        let handler: Handler
    }

    private let name: String
    private let sources = Mutex<[Source]>([])
    private let stopEvent: EventFD
    private let thread = Mutex<PosixThread?>(nil)

    public init(name: String) throws(SystemError) {
        self.name = name
        stopEvent = try EventFD()
    }

    /// Adds `event`; `handler` runs on the loop thread with the number of signals drained.
    /// Only before `start`.
    public func add(_ event: EventFD, handler: @escaping Handler) {
        sources.withLock { $0.append(Source(event: event, handler: handler)) }
    }

    /// Starts the thread.
    public func start() throws(SystemError) {
        let list = sources.withLock { $0 }
        let epoll = try Epoll()
        for (i, s) in list.enumerated() { try epoll.add(s.event.fd, tag: UInt64(i)) }
        let stopTag = UInt64.max
        try epoll.add(stopEvent.fd, tag: stopTag)
        // Epoll is ~Copyable; the thread owns it from here on.
        let box = EpollBox(epoll)
        let t = try PosixThread.start(name: name) {
            var running = true
            while running {
                do {
                    try box.epoll.wait { tag in
                        if tag == stopTag { running = false; return }
                        let s = list[Int(tag)]
                        let n = s.event.drain()
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

private final class EpollBox: @unchecked Sendable {
    // Used only by the loop thread after hand-over.
    let epoll: Epoll
    init(_ epoll: consuming Epoll) { self.epoll = epoll }
}
