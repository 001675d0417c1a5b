import Glibc
import LinuxSupport

/// Where a virtio-blk device's sectors live. Injected by the machine so the device model can be
/// tested against any implementation.
public protocol BlockBackend: Sendable {
    /// Size in bytes (a multiple of 512 is used; a tail is ignored).
    var size: UInt64 { get }
    var isReadOnly: Bool { get }
    /// Reads exactly `buffer.count` bytes at `offset`.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError)
    /// Writes all of `bytes` at `offset`; returns once they reached the file.
    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws(SystemError)
    /// Makes written data durable (`fdatasync`).
    func flush() throws(SystemError)
    /// The range's contents may be dropped (DISCARD); reads may return anything afterwards.
    func discard(at offset: UInt64, length: UInt64) throws(SystemError)
    /// The range must read as zeros afterwards (WRITE_ZEROES); `unmap` allows freeing it.
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(SystemError)
}

/// A raw disk image in a regular file.
///
/// Writable images are locked exclusively (`flock`), so two VMMs cannot write the same disk; a
/// read-only image is opened O_RDONLY and only share-locked.
public final class FileBlockBackend: BlockBackend {
    private let fd: Int32
    public let size: UInt64
    public let isReadOnly: Bool
    public let path: String

    public init(path: String, readOnly: Bool) throws(SystemError) {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        if fd < 0 { throw .current("open disk \(path)") }
        if flock(fd, (readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            throw SystemError("lock disk \(path) (is another VMM using it?)", errno: e)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw SystemError("stat disk \(path)", errno: e)
        }
        self.fd = fd
        self.size = UInt64(st.st_size)
        self.isReadOnly = readOnly
        self.path = path
    }

    deinit { close(fd) }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 { if errno == EINTR { continue }; throw .current("read \(path)") }
            if n == 0 {  // past the end: zeros
                (buffer.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
                return
            }
            done += n
        }
    }

    public func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 { if errno == EINTR { continue }; throw .current("write \(path)") }
            done += n
        }
    }

    public func flush() throws(SystemError) {
        if fdatasync(fd) != 0 { throw .current("fdatasync \(path)") }
    }

    // fallocate(2) modes from <linux/falloc.h>.
    static let keepSize: Int32 = 0x01, punchHole: Int32 = 0x02, zeroRange: Int32 = 0x10

    public func discard(at offset: UInt64, length: UInt64) throws(SystemError) {
        // Punching a hole frees the blocks and reads back as zeros; a file system that cannot
        // punch holes makes DISCARD a no-op, which the spec allows.
        if fallocateRange(fd, mode: Self.punchHole | Self.keepSize, offset: offset, length: length) != 0 && errno != EOPNOTSUPP {
            throw .current("discard \(path)")
        }
    }

    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(SystemError) {
        let mode = unmap ? Self.punchHole | Self.keepSize : Self.zeroRange | Self.keepSize
        if fallocateRange(fd, mode: mode, offset: offset, length: length) == 0 { return }
        guard errno == EOPNOTSUPP else { throw .current("write zeroes \(path)") }
        // No fallocate support: write the zeros.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { chunk.deallocate() }
        chunk.initializeMemory(as: UInt8.self, repeating: 0)
        var done: UInt64 = 0
        while done < length {
            let n = Int(min(UInt64(chunk.count), length - done))
            try write(at: offset + done, UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            done += UInt64(n)
        }
    }
}
