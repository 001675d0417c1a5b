import Locking
import Glibc
import JSON
import LinuxSupport
import Synchronization

/// Serves the control socket (`apus run --control PATH`) on a thread of its own, never a vCPU's.
///
/// One `poll` loop over the listening socket, every client and a wake-up eventfd. Clients are
/// nonblocking and each costs bounded work and memory: a request line is at most
/// `ControlDispatcher.maxRequestBytes` (a longer one gets an error reply and is skipped up to
/// its newline), a client's requests are handled one at a time in order (the next waits for the
/// reply to the last — `pause` and `balloon-stats` answer later, from another thread, through
/// the mailbox), and a client that does not read its replies stops being read from once
/// `maxQueuedReplyBytes` wait for it. So garbage, a client vanishing mid-line, or one that never
/// reads changes nothing and holds up nobody else. A request with no reply after
/// `replyTimeoutSeconds` is answered with an error.
public final class ControlServer: Sendable {
    public static let maxClients = 16
    public static let maxQueuedReplyBytes = 64 * 1024
    public static let replyTimeoutSeconds = 10.0

    public let listener: UnixListener
    private let wake: EventFD
    private let stopping = Atomic<Bool>(false)
    /// Replies that arrived off the loop thread: (client, request number, reply line).
    private let mailbox = Locked<[(client: Int, request: Int, line: [UInt8])]>([])
    private let thread = Locked<PosixThread?>(nil)

    /// Creates the socket at `path` (see `UnixListener` for what it refuses to replace).
    public init(path: String) throws(ListenerError) {
        listener = try UnixListener(path: path)
        do {
            wake = try EventFD()
        } catch {
            listener.removeSocketFile()
            throw ListenerError("\(path): \(error)")
        }
    }

    /// Starts serving `target` on thread `apus-control`, which confines itself first.
    public func start(target: any ControlTarget, sandbox: ThreadSandbox, control: MachineControl) throws(SystemError) {
        let dispatcher = ControlDispatcher(target: target)
        let t = try PosixThread.start(name: "apus-control") { [self] in
            guard sandbox.confineOrStop(.control, name: "apus-control", directoryFD: listener.directoryFD, control: control) else {
                return
            }
            serve(dispatcher)
            listener.removeSocketFile()
        }
        thread.withLock { $0 = t }
    }

    /// Stops serving and joins the thread, which removes the socket file as it ends. Idempotent.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        let t = thread.withLock { t -> PosixThread? in defer { t = nil }; return t }
        t?.join()
    }

    /// One connected client.
    private final class Client {
        let id: Int
        let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        /// Skipping the rest of an over-long line.
        var discarding = false
        /// The peer will send nothing more (it may still read).
        var endOfInput = false
        var broken = false
        /// The request awaiting its reply, and when it was sent.
        var pending: (request: Int, since: Double)?
        var nextRequest = 0

        init(id: Int, fd: Int32) {
            self.id = id
            self.fd = fd
        }

        deinit { close(fd) }

        var finished: Bool { broken || (endOfInput && pending == nil && output.isEmpty && !input.contains(0x0A)) }
        var wantsInput: Bool {
            !endOfInput && !broken && input.count < ControlDispatcher.maxRequestBytes + 1
                && output.count < ControlServer.maxQueuedReplyBytes
        }
    }

    private func serve(_ dispatcher: ControlDispatcher) {
        var clients: [Client] = []
        var nextID = 0
        var fds: [pollfd] = []
        while !stopping.load(ordering: .acquiring) {
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: listener.fd, events: clients.count < Self.maxClients ? Int16(POLLIN) : 0, revents: 0))
            for c in clients {
                var events: Int16 = 0
                if c.wantsInput { events |= Int16(POLLIN) }
                if !c.output.isEmpty { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: c.fd, events: events, revents: 0))
            }
            let waiting = clients.contains { $0.pending != nil }
            let n = poll(&fds, nfds_t(fds.count), waiting ? 500 : -1)
            if n < 0 && errno != EINTR { fputsError("apus: control socket: \(SystemError.current("poll")); no longer served"); return }

            if fds[0].revents != 0 { wake.drain() }
            for (i, c) in clients.enumerated() {
                let revents = fds[i + 2].revents
                if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 && c.wantsInput { receive(c) }
                if revents & Int16(POLLOUT) != 0 { send(c) }
                // Hung up with nothing more to read: gone, and its replies with it (POLLHUP
                // cannot be masked, so a client left in the list would make poll spin).
                if revents & Int16(POLLERR | POLLNVAL) != 0 || (revents & Int16(POLLHUP) != 0 && !c.wantsInput) { c.broken = true }
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                while clients.count < Self.maxClients, let fd = listener.accept() {
                    clients.append(Client(id: nextID, fd: fd))
                    nextID += 1
                }
            }
            deliverMail(to: clients)
            let now = MonotonicClock.now()
            for c in clients {
                if let p = c.pending, now - p.since > Self.replyTimeoutSeconds {
                    c.pending = nil  // a late reply to it is dropped
                    queue(ControlDispatcher.error("no reply within \(Int(Self.replyTimeoutSeconds)) s"), to: c)
                }
                dispatchLines(of: c, dispatcher, clients)
                if !c.output.isEmpty { send(c) }
            }
            // Replies given synchronously by the dispatcher are in the mailbox already.
            deliverMail(to: clients)
            for c in clients where !c.output.isEmpty { send(c) }
            clients.removeAll { $0.finished }
        }
    }

    /// Reads what the client sent, up to the line limit.
    private func receive(_ c: Client) {
        var buffer = [UInt8](repeating: 0, count: ControlDispatcher.maxRequestBytes)
        let room = ControlDispatcher.maxRequestBytes + 1 - c.input.count
        let n = buffer.withUnsafeMutableBytes { read(c.fd, $0.baseAddress!, min(room, $0.count)) }
        if n > 0 {
            c.input += buffer[0..<n]
        } else if n == 0 {
            c.endOfInput = true
            // A line cut off by the peer leaving is not a request: it changes nothing.
            if let last = c.input.lastIndex(of: 0x0A) { c.input.removeSubrange((last + 1)...) } else { c.input.removeAll() }
        } else if errno != EAGAIN && errno != EINTR {
            c.broken = true
        }
    }

    /// Hands complete lines to the dispatcher, one at a time: the next only once the previous
    /// one's reply is queued.
    private func dispatchLines(of c: Client, _ dispatcher: ControlDispatcher, _ clients: [Client]) {
        while c.pending == nil, !c.broken, c.output.count < Self.maxQueuedReplyBytes {
            guard let newline = c.input.firstIndex(of: 0x0A) else {
                if c.input.count > ControlDispatcher.maxRequestBytes {
                    // Over-long: answer once, then skip everything up to the next newline.
                    if !c.discarding {
                        queue(ControlDispatcher.error("request longer than \(ControlDispatcher.maxRequestBytes) bytes"), to: c)
                    }
                    c.discarding = true
                    c.input.removeAll()
                }
                return
            }
            var line = Array(c.input[..<newline])
            c.input.removeSubrange(...newline)
            if c.discarding { c.discarding = false; continue }
            if line.last == 0x0D { line.removeLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }  // blank lines are not requests
            let request = c.nextRequest
            c.nextRequest += 1
            c.pending = (request, MonotonicClock.now())
            let client = c.id
            dispatcher.handle(line: line) { [self] reply in
                var bytes = Array(reply.serialized.utf8)
                bytes.append(0x0A)
                mailbox.withLock { $0.append((client, request, bytes)) }
                wake.signal()
            }
            deliverMail(to: clients)
        }
    }

    /// Queues each reply that arrived for its client; replies for clients gone or requests
    /// timed out are dropped.
    private func deliverMail(to clients: [Client]) {
        let mail = mailbox.withLock { box in
            defer { box.removeAll() }
            return box
        }
        for m in mail {
            guard let c = clients.first(where: { $0.id == m.client }), c.pending?.request == m.request else { continue }
            c.pending = nil
            c.output += m.line
        }
    }

    private func queue(_ reply: JSONValue, to c: Client) {
        c.output += Array(reply.serialized.utf8) + [0x0A]
    }

    /// Writes what the socket takes now; the rest waits for POLLOUT.
    private func send(_ c: Client) {
        guard !c.output.isEmpty, !c.broken else { return }
        // MSG_NOSIGNAL: a client that left gets EPIPE, not a SIGPIPE for the whole process.
        let n = c.output.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        if n > 0 {
            c.output.removeFirst(n)
        } else if n < 0 && errno != EAGAIN && errno != EINTR {
            c.broken = true  // EPIPE: the client left; its replies go nowhere
        }
    }
}
