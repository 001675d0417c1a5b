import Glibc
import LinuxSupport

/// One contiguous range of guest RAM and the host memory behind it.
public struct GuestRegion: Sendable {
    /// First guest-physical address of the region.
    public let start: GuestAddress
    /// Length in bytes.
    public let size: UInt64
    /// Host address of `start`. Valid while the owning `GuestMemory` lives.
    public nonisolated(unsafe) let host: UnsafeMutableRawPointer

    /// Whether `[address, address + length)` lies inside this region.
    @inline(__always)
    func offset(of address: GuestAddress, length: UInt64) -> UInt64? {
        guard address.rawValue >= start.rawValue else { return nil }
        let offset = address.rawValue - start.rawValue
        guard offset <= size, length <= size - offset else { return nil }
        return offset
    }
}

/// Guest RAM: a few regions of host memory mapped at guest-physical addresses.
///
/// Every access is bounds-checked against a single region and returns an error value for a bad
/// address — guest-controlled addresses reach this type (descriptor rings, boot parameters).
/// The memory is shared with running vCPUs and devices, so accesses copy bytes in and out;
/// nothing here hands out Swift references into guest memory.
public final class GuestMemory: Sendable {
    /// The RAM regions, sorted by address and non-overlapping.
    public let regions: [GuestRegion]
    private let mappings: MappingOwner

    /// Maps anonymous memory for each `(start, size)` range (sizes page-aligned).
    public init(ranges: [(start: GuestAddress, size: UInt64)]) throws(SystemError) {
        let sorted = ranges.sorted { $0.start < $1.start }
        let owner = MappingOwner()
        var regions: [GuestRegion] = []
        for range in sorted where range.size > 0 {
            let mapping = try MemoryMapping.guestRAM(length: Int(range.size))
            regions.append(GuestRegion(start: range.start, size: range.size, host: mapping.base))
            owner.keep(mapping)
        }
        self.regions = regions
        self.mappings = owner
    }

    /// Total bytes of RAM.
    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// The host pointer for `[address, address + length)`, which must lie in one region.
    @inline(__always)
    public func hostPointer(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        guard address.adding(length) != nil else { throw .overflow(address: address, length: length) }
        for region in regions {
            if let offset = region.offset(of: address, length: length) {
                return region.host + Int(offset)
            }
        }
        throw .outOfRange(address: address, length: length)
    }

    /// Whether the whole range is RAM.
    public func contains(_ address: GuestAddress, length: UInt64) -> Bool {
        (try? hostPointer(address, length: length)) != nil
    }

    /// Copies guest bytes at `address` into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, from address: GuestAddress) throws(GuestMemoryError) {
        guard buffer.count > 0 else { return }
        let source = try hostPointer(address, length: UInt64(buffer.count))
        buffer.baseAddress!.copyMemory(from: source, byteCount: buffer.count)
    }

    /// Copies `bytes` into guest memory at `address`.
    public func write(_ bytes: UnsafeRawBufferPointer, to address: GuestAddress) throws(GuestMemoryError) {
        guard bytes.count > 0 else { return }
        let target = try hostPointer(address, length: UInt64(bytes.count))
        target.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    /// Copies an array of bytes into guest memory (loaders, firmware tables).
    public func write(_ bytes: [UInt8], to address: GuestAddress) throws(GuestMemoryError) {
        guard !bytes.isEmpty else { return }
        let target = try hostPointer(address, length: UInt64(bytes.count))
        bytes.withUnsafeBytes { target.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Reads `count` bytes into a new array.
    public func readBytes(_ address: GuestAddress, count: Int) throws(GuestMemoryError) -> [UInt8] {
        guard count > 0 else { return [] }
        let source = try hostPointer(address, length: UInt64(count))
        return Array(UnsafeRawBufferPointer(start: source, count: count))
    }

    /// Reads a little-endian integer.
    @inline(__always)
    public func load<T: FixedWidthInteger>(_: T.Type = T.self, at address: GuestAddress) throws(GuestMemoryError) -> T {
        let p = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    /// Writes a little-endian integer.
    @inline(__always)
    public func store<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        let p = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        p.storeBytes(of: value.littleEndian, as: T.self)
    }

    /// Gives the host pages behind `[address, address + length)` back to the host kernel
    /// (`MADV_DONTNEED`): the process's resident memory drops, and the guest reads zeros there
    /// the next time it touches the range. The range must lie in one region; only the host pages
    /// entirely inside it are discarded (a partial host page at either end stays), so a guest
    /// page smaller than or misaligned with the host's never costs its neighbours their bytes.
    /// Returns the bytes discarded.
    ///
    /// Guest RAM is anonymous private memory, so DONTNEED frees it; KVM's MMU notifier drops
    /// its mappings of those pages at the same time.
    @discardableResult
    public func discard(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> UInt64 {
        let host = try hostPointer(address, length: length)
        let page = UInt(Self.hostPageSize)
        let start = (UInt(bitPattern: host) + page - 1) & ~(page - 1)
        let end = (UInt(bitPattern: host) + UInt(length)) & ~(page - 1)
        guard end > start else { return 0 }
        // Cannot fail for a page-aligned range inside our own mapping; if it ever does, the
        // memory simply stays resident, which is what the guest sees either way.
        guard madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_DONTNEED) == 0 else { return 0 }
        return UInt64(end - start)
    }

    /// The host's page size, the unit `discard` works in.
    public static let hostPageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Fills `[address, address + count)` with zeros.
    public func zero(_ address: GuestAddress, count: Int) throws(GuestMemoryError) {
        let p = try hostPointer(address, length: UInt64(count))
        p.initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }
}

/// Keeps the `~Copyable` mappings alive exactly as long as the `GuestMemory` that uses them.
private final class MappingOwner: @unchecked Sendable {
    // Only mutated during `GuestMemory.init`, before the object is shared.
    private var mappings: [Holder] = []
    private final class Holder {
        let mapping: MemoryMapping
        init(_ mapping: consuming MemoryMapping) { self.mapping = mapping }
    }
    func keep(_ mapping: consuming MemoryMapping) { mappings.append(Holder(mapping)) }
}
