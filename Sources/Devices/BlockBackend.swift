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
}
