import CKVM
import Glibc

/// An owned file descriptor, closed exactly once when its owner goes away.
///
/// `~Copyable` makes ownership visible in the types: a descriptor can be moved into the object
/// that uses it, never silently duplicated.
public struct OwnedFD: ~Copyable {
    /// The raw descriptor number, valid while this value lives.
    public let raw: Int32

    /// Takes ownership of `raw`.
    public init(adopting raw: Int32) { self.raw = raw }

    /// Opens `path` with `flags` (`O_CLOEXEC` is always added).
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(SystemError) -> OwnedFD {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        if fd < 0 { throw SystemError.current("open \(path)") }
        return OwnedFD(adopting: fd)
    }

    deinit { close(raw) }
}

/// Writes all of `bytes` to `fd`, retrying on short writes and `EINTR`.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw SystemError.current("write")
        }
        done += n
    }
}

/// Reads a whole regular file into memory (kernels, initrds, bare-metal guests, and `/proc`
/// files, whose size `stat` reports as 0): sized by `stat` first, then read until end of file.
public func readWholeFile(_ path: String) throws(SystemError) -> [UInt8] {
    let fd = try OwnedFD.open(path, O_RDONLY)
    var st = stat()
    if fstat(fd.raw, &st) != 0 { throw SystemError.current("stat \(path)") }
    if (st.st_mode & S_IFMT) != S_IFREG { throw SystemError("read \(path): not a regular file", errno: EINVAL) }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    var done = 0
    // Where the size ran out (or was 0), further reads go through a small probe, so that a
    // file of the size stat said costs one extra read(2), not a bigger buffer.
    var probe = [UInt8](repeating: 0, count: 4096)
    while true {
        let n: Int
        if done < bytes.count {
            n = bytes.withUnsafeMutableBytes { read(fd.raw, $0.baseAddress! + done, $0.count - done) }
        } else {
            n = probe.withUnsafeMutableBytes { read(fd.raw, $0.baseAddress!, $0.count) }
            if n > 0 { bytes += probe.prefix(n) }
        }
        if n < 0 {
            if errno == EINTR { continue }
            throw SystemError.current("read \(path)")
        }
        if n == 0 { break }
        done += n
    }
    return Array(bytes.prefix(done))
}

/// Creates or truncates `path` and writes `text` to it.
public func writeFile(_ path: String, _ text: String) throws(SystemError) {
    let fd = try OwnedFD.open(path, O_WRONLY | O_CREAT | O_TRUNC)
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd.raw, $0.baseAddress! + done, $0.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .current("write \(path)")
        }
        done += n
    }
}

/// Fills `count` bytes at `buffer` from the kernel's random pool (`getrandom(2)`); returns the
/// number of bytes written (fewer on interruption, 0 on error).
public func fillRandom(_ buffer: UnsafeMutableRawPointer, count: Int) -> Int {
    let n = getrandom(buffer, count, 0)
    return n > 0 ? n : 0
}

/// `fallocate(2)` (punch hole, zero range, …); returns 0 or -1 with `errno` set.
public func fallocateRange(_ fd: Int32, mode: Int32, offset: UInt64, length: UInt64) -> Int32 {
    apus_fallocate(fd, mode, Int64(offset), Int64(length))
}
