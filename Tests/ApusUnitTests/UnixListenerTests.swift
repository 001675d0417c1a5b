import CKVM
import Glibc
import LinuxSupport
import Testing

/// The control socket's file: owner-only, never replacing anything but a stale socket, and
/// removed only while it is still the socket that was bound.
@Suite struct UnixListenerTests {
    static func scratchPath(_ tag: String) -> String { "/tmp/apus-listener-\(tag)-\(getpid()).sock" }

    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode : nil
    }

    @Test func theSocketIsOwnerOnlyAndRemoved() throws {
        let path = Self.scratchPath("mode")
        defer { unlink(path) }
        let listener = try UnixListener(path: path)
        let m = try #require(Self.mode(path))
        #expect(m & S_IFMT == S_IFSOCK)
        #expect(m & 0o777 == 0o600)
        listener.removeSocketFile()
        #expect(Self.mode(path) == nil)
    }

    @Test func anExistingFileIsRefusedAndLeftAlone() throws {
        let path = Self.scratchPath("file")
        defer { unlink(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = write(fd, "keep", 4)
        close(fd)
        #expect { try UnixListener(path: path) } throws: { "\($0)".contains("exists and is not a socket; refusing to replace it") }
        #expect(try readWholeFile(path) == Array("keep".utf8))
    }

    @Test func aStaleSocketIsReplacedAndALiveOneIsNot() throws {
        let path = Self.scratchPath("stale")
        defer { unlink(path) }
        // A socket file nobody listens on: what an apus killed with SIGKILL leaves behind.
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(s)
        try #require(bound == 0)
        let live = try UnixListener(path: path)
        // Now someone listens: a second apus must not take the path.
        #expect { try UnixListener(path: path) } throws: { "\($0)".contains("is in use") }
        let client = try UnixSocket.connect(path)
        close(client)
        live.removeSocketFile()
        #expect(Self.mode(path) == nil)
    }

    @Test func aListenerThatStoppedAcceptingIsInUseNotAHang() throws {
        let path = Self.scratchPath("backlog")
        defer { unlink(path) }
        let live = try UnixListener(path: path, backlog: 1)
        // Fill the backlog: nobody accepts, so further connections cannot complete.
        var clients: [Int32] = []
        defer { for c in clients { close(c) } }
        while clients.count < 64, let c = try? UnixSocket.connect(path, nonblocking: true) { clients.append(c) }
        #expect(clients.count < 64, "the backlog never filled")
        #expect { try UnixListener(path: path) } throws: { "\($0)".contains("is in use") }
        live.removeSocketFile()
    }

    @Test func aPathReplacedMeanwhileIsNotRemoved() throws {
        let path = Self.scratchPath("replaced")
        defer { unlink(path) }
        let listener = try UnixListener(path: path)
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        close(fd)
        listener.removeSocketFile()
        #expect(Self.mode(path).map { $0 & S_IFMT } == S_IFREG)
    }

    @Test func aPathTooLongForSunPathIsAnError() {
        let path = "/tmp/" + String(repeating: "x", count: 120)
        #expect { try UnixListener(path: path) } throws: { "\($0)".contains("longer than 107 bytes") }
    }
}
