import CKVM
import Glibc
import LinuxSupport
import Locking

/// Where a virtio-blk device's sectors live. Injected by the machine so the device model can be
/// tested against any implementation.
public protocol BlockBackend: Sendable {
    /// Size in bytes (a multiple of 512 is used; a tail is ignored).
    var size: UInt64 { get }
    var isReadOnly: Bool { get }
    /// Fills the buffers `vectors` describes, in order, from the bytes at `offset` (a request's
    /// guest buffers in one call: one `preadv` instead of a `pread` per segment). May change
    /// `vectors` while working through a partial transfer.
    func read(at offset: UInt64, into vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError)
    /// Writes the buffers `vectors` describes, in order, at `offset`; returns once all reached
    /// the file. May change `vectors`.
    func write(at offset: UInt64, from vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError)
    /// Makes written data durable (`fdatasync`).
    func flush() throws(SystemError)
    /// The range's contents may be dropped (DISCARD); reads may return anything afterwards.
    func discard(at offset: UInt64, length: UInt64) throws(SystemError)
    /// The range must read as zeros afterwards (WRITE_ZEROES); `unmap` allows freeing it.
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(SystemError)
}

/// A raw disk image in a regular file or a block device.
///
/// Images are locked the way QEMU locks them (see `ImageLock`), so that neither two Apus
/// instances nor Apus and QEMU can write one image at once, and a read-only disk does not
/// change under the guest.
public final class FileBlockBackend: BlockBackend {
    private let fd: Int32
    public let size: UInt64
    public let isReadOnly: Bool
    public let path: String
    /// `fdatasync`, or a stand-in for tests.
    private let sync: @Sendable (Int32) -> Int32
    /// The first failed flush. After a writeback error the kernel may drop the dirty pages and
    /// report success on the next fdatasync (PostgreSQL's "fsyncgate"): data acknowledged as
    /// durable would be lost, so every later flush fails too.
    private let flushError = Locked<SystemError?>(nil)

    public init(path: String, readOnly: Bool,
                sync: @escaping @Sendable (Int32) -> Int32 = { fdatasync($0) }) throws(SystemError) {
        self.sync = sync
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        if fd < 0 { throw .current("open disk \(path)") }
        do { try ImageLock.acquire(fd: fd, readOnly: readOnly) } catch {
            close(fd)
            throw SystemError("lock disk \(path): \(error.operation) (is another VMM, QEMU or Apus, using it?)", errno: error.errno)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw SystemError("stat disk \(path)", errno: e)
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            size = UInt64(st.st_size)
        case S_IFBLK:
            var bytes: UInt64 = 0
            guard apus_ioctl_ptr(fd, apus_blkgetsize64(), &bytes) == 0 else {
                let e = errno
                close(fd)
                throw SystemError("BLKGETSIZE64 on disk \(path)", errno: e)
            }
            size = bytes
        default:
            close(fd)
            throw SystemError("disk \(path) is not a regular file or a block device", errno: EINVAL)
        }
        self.fd = fd
        self.isReadOnly = readOnly
        self.path = path
    }

    deinit { close(fd) }

    public func read(at offset: UInt64, into vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) {
        try transfer(vectors, at: offset, writing: false)
    }

    public func write(at offset: UInt64, from vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) {
        try transfer(vectors, at: offset, writing: true)
    }

    /// `preadv`/`pwritev` until every vector is done, advancing `vectors` past what each call
    /// moved. Reading past the end of the file yields zeros (the image may have shrunk).
    private func transfer(_ vectors: UnsafeMutableBufferPointer<iovec>, at offset: UInt64, writing: Bool) throws(SystemError) {
        // Nothing to move (pwritev would return 0, which below means a failed write).
        guard var first = vectors.firstIndex(where: { $0.iov_len > 0 }) else { return }
        var position = off_t(offset)
        while first < vectors.count {
            let count = Int32(min(vectors.count - first, Self.maxVectorsPerCall))
            let n = writing ? pwritev(fd, vectors.baseAddress! + first, count, position)
                            : preadv(fd, vectors.baseAddress! + first, count, position)
            if n < 0 {
                if errno == EINTR { continue }
                throw .current("\(writing ? "write" : "read") \(path)")
            }
            if n == 0 {
                guard !writing else { throw SystemError("write \(path)", errno: EIO) }
                for v in vectors[first...] { v.iov_base?.initializeMemory(as: UInt8.self, repeating: 0, count: v.iov_len) }
                return
            }
            position += off_t(n)
            var left = n
            while first < vectors.count, left >= vectors[first].iov_len {
                left -= vectors[first].iov_len
                first += 1
            }
            if left > 0 {
                vectors[first].iov_base = vectors[first].iov_base! + left
                vectors[first].iov_len -= left
            }
        }
    }

    /// Linux's UIO_MAXIOV: the most vectors one preadv/pwritev takes.
    static let maxVectorsPerCall = 1024

    public func flush() throws(SystemError) {
        try flushError.withLock { (stored: inout SystemError?) throws(SystemError) in
            if let stored { throw stored }
            if sync(fd) != 0 {
                let error = SystemError.current("fdatasync \(path)")
                stored = error
                throw error
            }
        }
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
            // One vector, in storage that outlives the call (a pointer to a local var would not).
            let vector = UnsafeMutableBufferPointer<iovec>.allocate(capacity: 1)
            defer { vector.deallocate() }
            vector[0] = iovec(iov_base: chunk.baseAddress, iov_len: n)
            try write(at: offset + done, from: vector)
            done += UInt64(n)
        }
    }
}

/// Image locks that QEMU honours (its block/file-posix.c scheme): open-file-description locks on
/// single bytes, where byte 100 + n says "I use permission n" and byte 200 + n says "I do not
/// share permission n" (n = 0 consistent read, 1 write). QEMU takes shared locks there and probes
/// for conflicting ones before it opens an image.
enum ImageLock {
    static let readPermission: Int = 100, writePermission: Int = 101, writeNotShared: Int = 201

    /// A writer locks the whole file exclusively: it conflicts with every lock QEMU or another
    /// Apus holds, and every lock they try to take. A reader takes QEMU's reader locks ("I read,
    /// nobody else may write") and refuses an image that someone holds the write permission on.
    static func acquire(fd: Int32, readOnly: Bool) throws(SystemError) {
        if !readOnly {
            if apus_ofd_lock(fd, Int16(F_WRLCK), 0, 0) != 0 { throw .current("exclusive lock") }
            return
        }
        for byte in [readPermission, writeNotShared] {
            if apus_ofd_lock(fd, Int16(F_RDLCK), byte, 1) != 0 { throw .current("shared lock on byte \(byte)") }
        }
        switch apus_ofd_conflict(fd, Int16(F_WRLCK), writePermission, 1) {
        case 0: return
        case 1: throw SystemError("another process holds the image writable", errno: EAGAIN)
        default: throw .current("probe the write lock")
        }
    }
}
