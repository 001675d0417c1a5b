import CKVM
import Glibc

/// An owned `mmap` region, unmapped when its owner goes away.
///
/// Guest RAM and each vCPU's `kvm_run` page are mappings; owning them in a `~Copyable` value
/// means the unmap happens exactly once and never while someone still holds the owner.
public struct MemoryMapping: ~Copyable {
    /// First byte of the mapping.
    public let base: UnsafeMutableRawPointer
    /// Length in bytes.
    public let length: Int

    /// Maps `length` bytes of zeroed anonymous private memory (not reserved in swap up front:
    /// guest RAM is mostly untouched).
    public static func anonymous(length: Int) throws(SystemError) -> MemoryMapping {
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { throw SystemError.current("mmap anonymous \(length) bytes") }
        return MemoryMapping(base: p, length: length)
    }

    /// Guest RAM: anonymous memory as above, left out of core dumps (`MADV_DONTDUMP`): a crash
    /// of apus must not write the guest's memory, its secrets included, to disk.
    public static func guestRAM(length: Int) throws(SystemError) -> MemoryMapping {
        let mapping = try anonymous(length: length)
        if madvise(mapping.base, length, MADV_DONTDUMP) != 0 { throw SystemError.current("madvise MADV_DONTDUMP") }
        return mapping
    }

    /// Maps `length` bytes of `fd` shared (the `kvm_run` area of a vCPU, a memfd).
    public static func shared(fd: Int32, length: Int, operation: String) throws(SystemError) -> MemoryMapping {
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { throw SystemError.current(operation) }
        return MemoryMapping(base: p, length: length)
    }

    private init(base: UnsafeMutableRawPointer, length: Int) {
        self.base = base
        self.length = length
    }

    deinit { munmap(base, length) }
}
