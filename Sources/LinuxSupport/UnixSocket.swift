import CKVM
import Glibc
import Synchronization

/// Unix stream sockets at a filesystem path: the listening end of apus's control socket and
/// the client end of `apus ctl`.
public enum UnixSocket {
    /// `sun_path` holds 108 bytes including the terminating NUL.
    public static let maxPathLength = 107

    /// Fills a `sockaddr_un` for `path` and calls `body` with it.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) throws(SystemError) -> T {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxPathLength, !bytes.contains(0) else {
            throw SystemError("socket path \(path): longer than \(maxPathLength) bytes, empty or with a NUL", errno: ENAMETOOLONG)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Connects to the socket at `path` (close-on-exec) and returns the descriptor, which the
    /// caller closes. The connect never waits: a listener whose backlog is full (a server that
    /// stopped accepting) is `EAGAIN`, not a hang. The descriptor is blocking unless
    /// `nonblocking`.
    public static func connect(_ path: String, nonblocking: Bool = false) throws(SystemError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw SystemError.current("socket") }
        let rc: Int32
        do {
            rc = try withAddress(path) { Glibc.connect(fd, $0, $1) }
        } catch {
            close(fd)
            throw error
        }
        if rc != 0 {
            let e = SystemError.current("connect \(path)")
            close(fd)
            throw e
        }
        if !nonblocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
        return fd
    }
}

/// A listening Unix stream socket bound at a path, owner-only (mode 0600), nonblocking.
///
/// It never replaces a file that is not a stale socket: an existing path is taken over only
/// when it is a socket nobody listens on (connecting is refused: the apus that made it died
/// without removing it). A directory descriptor opened at bind time lets the owner remove the
/// socket at the end with `unlinkat` on that directory alone (which a seccomp filter can pin to
/// the descriptor), and only if the path still names the socket it bound.
public final class UnixListener: Sendable {
    public let path: String
    /// The listening descriptor (nonblocking, close-on-exec).
    public let fd: Int32
    /// The directory holding the socket, and the socket's name in it.
    public let directoryFD: Int32
    let name: String
    private let device: UInt64
    private let inode: UInt64
    private let removed = Atomic<Bool>(false)

    /// Binds and listens at `path`. Throws `ListenerError` with a one-line reason.
    public init(path: String, backlog: Int32 = 16) throws(ListenerError) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw ListenerError("\(path): names a directory, not a socket") }

        try Self.clearStale(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ListenerError("\(path): \(SystemError.current("socket"))") }
        // Owner-only from the start: the socket file gets the umask's mode at bind, so there is
        // no moment where another user could connect.
        let oldMask = umask(0o177)
        let rc: Int32
        do {
            rc = try UnixSocket.withAddress(path) { bind(fd, $0, $1) }
        } catch {
            umask(oldMask)
            close(fd)
            throw ListenerError("\(error)")
        }
        let bindErrno = errno
        umask(oldMask)
        guard rc == 0 else {
            close(fd)
            if bindErrno == EADDRINUSE { throw ListenerError("\(path) appeared while apus was creating it; refusing to replace it") }
            throw ListenerError("\(path): \(SystemError("bind", errno: bindErrno))")
        }
        var st = stat()
        guard lstat(path, &st) == 0, Glibc.listen(fd, backlog) == 0 else {
            let e = SystemError.current("listen")
            unlink(path)
            close(fd)
            throw ListenerError("\(path): \(e)")
        }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else {
            let e = SystemError.current("open \(directory)")
            unlink(path)
            close(fd)
            throw ListenerError("\(path): \(e)")
        }
        self.fd = fd
        directoryFD = dirFD
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    deinit {
        removeSocketFile()
        close(fd)
        close(directoryFD)
    }

    /// Removes the socket file if the path still names the socket this listener bound
    /// (uses only `fstatat` and `unlinkat` on `directoryFD`). Only the first call does
    /// anything; the listener's end calls it too, if nobody did.
    public func removeSocketFile() {
        guard !removed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var st = stat()
        guard fstatat(directoryFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0,
              UInt64(st.st_dev) == device, UInt64(st.st_ino) == inode else { return }
        unlinkat(directoryFD, name, 0)
    }

    /// Accepts one pending connection: a nonblocking, close-on-exec descriptor, or nil when
    /// none is waiting (or it failed: the client went away meanwhile).
    public func accept() -> Int32? {
        let client = apus_accept_nonblocking(fd)
        return client >= 0 ? client : nil
    }

    /// Leaves `path` free, or throws: a stale socket (connecting is refused) is removed; a live
    /// one, or anything that is not a socket, stays and is an error.
    static func clearStale(_ path: String) throws(ListenerError) {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw ListenerError("\(path): \(SystemError.current("stat"))")
        }
        guard st.st_mode & S_IFMT == S_IFSOCK else {
            throw ListenerError("\(path) exists and is not a socket; refusing to replace it (remove it or choose another path)")
        }
        do {
            close(try UnixSocket.connect(path, nonblocking: true))
        } catch where error.errno == ECONNREFUSED {
            // Nobody listens: a socket left behind by an apus that did not exit cleanly.
            if unlink(path) != 0 { throw ListenerError("\(path): stale socket, \(SystemError.current("unlink"))") }
            return
        } catch where error.errno == EAGAIN {
            throw ListenerError("\(path) is in use: another process listens on it, its backlog full")
        } catch {
            throw ListenerError("\(path) exists and cannot be checked (\(error)); refusing to replace it")
        }
        throw ListenerError("\(path) is in use: another process listens on it (another apus?)")
    }
}

/// Why a control socket could not be created, in one line.
public struct ListenerError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
