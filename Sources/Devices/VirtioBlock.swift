import ByteOrder
import Diagnostics
import Glibc
import GuestMemory
import LinuxSupport
import Locking
import Synchronization
import Virtio

/// virtio-blk (virtio 1.2 §5.2): one request queue; IN, OUT, FLUSH and GET_ID requests.
///
/// A request is a chain: a 16-byte header the device reads (type, reserved, sector), data
/// buffers, and a status byte the device writes last. The chain is treated as two byte streams
/// (readable, then writable), so any descriptor layout works. Every request is checked before
/// any I/O: the header is complete, the data direction matches the type, the sector range lies
/// inside the disk, the status byte exists. A bad request gets IOERR or UNSUPP — never a crash.
public final class VirtioBlock: VirtioDevice {
    // Request types and status values.
    static let typeIn: UInt32 = 0, typeOut: UInt32 = 1, typeFlush: UInt32 = 4, typeGetID: UInt32 = 8
    static let typeDiscard: UInt32 = 11, typeWriteZeroes: UInt32 = 13
    public static let statusOK: UInt8 = 0, statusIOError: UInt8 = 1, statusUnsupported: UInt8 = 2
    // Feature bits.
    static let featureSizeMax: UInt64 = 1 << 1, featureSegMax: UInt64 = 1 << 2, featureRO: UInt64 = 1 << 5
    static let featureBlkSize: UInt64 = 1 << 6, featureFlush: UInt64 = 1 << 9
    static let featureConfigWCE: UInt64 = 1 << 11, featureDiscard: UInt64 = 1 << 13, featureWriteZeroes: UInt64 = 1 << 14
    /// Limits for DISCARD / WRITE_ZEROES: sectors per segment and segments per request.
    static let maxRangeSectors: UInt32 = 1 << 22, maxRangeSegments: UInt32 = 16
    static let writebackOffset = 32
    public static let sectorSize: UInt64 = 512
    static let queueSize: UInt16 = 256
    /// size_max and seg_max as advertised: a request carries at most `maxSegments` data
    /// segments of at most `maxSegmentSize` bytes, so at most `maxRequestBytes` of data.
    static let maxSegmentSize: UInt32 = 1 << 20
    static let maxSegments = UInt32(queueSize - 2)
    static let maxRequestBytes = Int(maxSegments) * Int(maxSegmentSize)
    static let idLength = 20

    public let deviceType = VirtioDeviceID.block
    public let name: String
    public let offeredFeatures: UInt64
    public let queueMaxSizes: [UInt16] = [VirtioBlock.queueSize]
    private let backend: any BlockBackend
    private let config: [UInt8]
    /// CONFIG_WCE's `writeback` byte: 1 = write-back (the driver flushes), 0 = write-through
    /// (every write is made durable before it completes). Set from the negotiated features at
    /// activation (§5.2.5): a driver that negotiated neither FLUSH nor CONFIG_WCE never flushes,
    /// so its device must be write-through.
    private let writeback = Atomic<UInt8>(1)
    /// Whether the driver negotiated CONFIG_WCE (only then may it write `writeback`).
    private let configurableCache = Atomic<Bool>(false)
    private let serial: [UInt8]
    private let log: DeviceLog

    private struct Active: @unchecked Sendable {
        let queue: SplitQueue
        let interrupt: any VirtioInterrupt
        let scratch = RequestScratch()
    }

    /// A request's working arrays, kept between requests so that reads and writes allocate
    /// nothing once they have grown (DISCARD, WRITE_ZEROES and GET_ID still do). Only touched
    /// under `active`'s lock.
    final class RequestScratch {
        var readable: [Descriptor] = []
        var writable: [Descriptor] = []
        var vectors: [iovec] = []
        var header = [UInt8](repeating: 0, count: 16)
    }
    private let active = Locked<Active?>(nil)

    public init(name: String, backend: any BlockBackend, serial: String, log: DeviceLog = .discard) {
        self.name = name
        self.backend = backend
        self.log = log
        self.serial = Array(serial.utf8.prefix(Self.idLength))
        var features = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc | VirtioFeature.ringEventIdx
            | Self.featureSizeMax | Self.featureSegMax | Self.featureBlkSize | Self.featureFlush
            | Self.featureConfigWCE
        if backend.isReadOnly { features |= Self.featureRO } else { features |= Self.featureDiscard | Self.featureWriteZeroes }
        offeredFeatures = features
        // Configuration layout (§5.2.4): capacity @0, size_max @8, seg_max @12, geometry @16,
        // blk_size @20, topology @24, writeback @32, num_queues @34, discard limits @36–47,
        // write-zeroes limits @48–56.
        var c = [UInt8](repeating: 0, count: 60)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) { c.storeLittleEndian(v, at: at) }
        put(backend.size / Self.sectorSize, 0)
        put(Self.maxSegmentSize, 8)
        put(UInt32(Self.queueSize - 2), 12)
        put(UInt32(Self.sectorSize), 20)
        put(UInt16(1), 34)
        put(Self.maxRangeSectors, 36)
        put(Self.maxRangeSegments, 40)
        put(UInt32(1), 44)
        put(Self.maxRangeSectors, 48)
        put(Self.maxRangeSegments, 52)
        c[56] = 1  // write_zeroes_may_unmap
        config = c
    }

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        var c = config
        c[Self.writebackOffset] = writeback.load(ordering: .relaxed)
        readConfigBytes(c, offset: offset, into: buffer)
    }

    /// Only `writeback` is writable, and only once the driver negotiated CONFIG_WCE; other
    /// writes are ignored.
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {
        guard offset == Self.writebackOffset, bytes.count == 1, configurableCache.load(ordering: .relaxed) else { return }
        writeback.store(bytes[0] == 0 ? 0 : 1, ordering: .relaxed)
    }

    /// Whether every write is made durable before it completes.
    public var isWriteThrough: Bool { writeback.load(ordering: .relaxed) == 0 }

    public func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {
        guard let queue = queues.first ?? nil else { throw QueueError.invalidSize(0, max: Self.queueSize) }
        // With CONFIG_WCE the driver reads (and may change) the mode, write-back to start;
        // without it the mode follows FLUSH: a driver that cannot flush gets write-through.
        let wce = features & Self.featureConfigWCE != 0
        configurableCache.store(wce, ordering: .relaxed)
        writeback.store(wce || features & Self.featureFlush != 0 ? 1 : 0, ordering: .relaxed)
        active.withLock { $0 = Active(queue: queue, interrupt: interrupt) }
    }

    public func reset() {
        // Taking the lock waits for a queue run in progress: after reset returns, the device
        // no longer touches guest memory.
        active.withLock { $0 = nil }
        configurableCache.store(false, ordering: .relaxed)
        writeback.store(1, ordering: .relaxed)
    }

    public func processQueue(_ index: Int) {
        guard index == 0 else { return }
        // The whole run holds the lock, so a concurrent reset waits for it (see `reset`).
        active.withLock { active in
            guard let a = active else { return }
            a.queue.serveAvailable(queue: 0, interrupt: a.interrupt, log: { log.report("broken ring", "\($0); the device needs a reset") }) { chain in
                handle(&chain, memory: a.queue.memory, scratch: a.scratch)
            }
        }
    }

    /// Serves one request; returns the bytes written into the chain (data + status).
    func handle(_ chain: inout DescriptorChain, memory: GuestMemory, scratch: RequestScratch) -> UInt32 {
        scratch.readable.removeAll(keepingCapacity: true)
        scratch.writable.removeAll(keepingCapacity: true)
        while let d = chain.next() { if d.isWritable { scratch.writable.append(d) } else { scratch.readable.append(d) } }
        guard chain.error == nil else { return 0 }
        let readable = scratch.readable, writable = scratch.writable
        let inBytes = readable.reduce(0) { $0 + Int($1.length) }
        let outBytes = writable.reduce(0) { $0 + Int($1.length) }
        // Without a header or a status byte there is nothing sensible to answer.
        guard inBytes >= 16, outBytes >= 1 else {
            log.report("request without header or status", "request without header or status byte")
            return 0
        }
        // Zeroed first: a copy cut short must not leave the previous request's header behind.
        for i in scratch.header.indices { scratch.header[i] = 0 }
        copy(from: readable, at: 0, into: &scratch.header, memory: memory)
        let header = scratch.header
        let type = header.loadLittleEndian(UInt32.self, at: 0)!
        let sector = header.loadLittleEndian(UInt64.self, at: 8)!
        let dataIn = outBytes - 1      // writable bytes before the status byte
        let dataOut = inBytes - 16     // readable bytes after the header
        // Descriptors may overlap, so a small RAM can describe terabytes: hold the driver to
        // the size_max × seg_max the device advertised (which also keeps used.len in range).
        guard max(dataIn, dataOut) <= Self.maxRequestBytes else {
            writeStatus(Self.statusIOError, into: writable, at: outBytes - 1, memory: memory)
            return 1
        }

        var status = Self.statusOK
        var written = 0
        switch type {
        case Self.typeIn:
            if dataIn % Int(Self.sectorSize) != 0 || !inRange(sector, dataIn) {
                status = Self.statusIOError
            } else {
                status = transfer(writable, at: 0, count: dataIn, memory: memory, vectors: &scratch.vectors) { vectors in
                    do throws(SystemError) { try backend.read(at: sector * Self.sectorSize, into: vectors) } catch { return error }
                    return nil
                }
                written = status == Self.statusOK ? dataIn : 0
            }
        case Self.typeOut:
            if backend.isReadOnly || dataOut % Int(Self.sectorSize) != 0 || !inRange(sector, dataOut) {
                status = Self.statusIOError
            } else {
                status = transfer(readable, at: 16, count: dataOut, memory: memory, vectors: &scratch.vectors) { vectors in
                    do throws(SystemError) { try backend.write(at: sector * Self.sectorSize, from: vectors) } catch { return error }
                    return nil
                }
                if status == Self.statusOK && isWriteThrough {
                    do { try backend.flush() } catch { log.report("flush failed", "\(error)"); status = Self.statusIOError }
                }
            }
        case Self.typeDiscard, Self.typeWriteZeroes:
            status = backend.isReadOnly ? Self.statusIOError
                : ranges(readable, count: dataOut, type: type, memory: memory)
        case Self.typeFlush:
            do { try backend.flush() } catch { log.report("flush failed", "\(error)"); status = Self.statusIOError }
        case Self.typeGetID:
            var id = serial + [UInt8](repeating: 0, count: Self.idLength - serial.count)
            id = Array(id.prefix(min(Self.idLength, dataIn)))
            written = copy(id, into: writable, memory: memory)
        default:
            status = Self.statusUnsupported
        }
        writeStatus(status, into: writable, at: outBytes - 1, memory: memory)
        return UInt32(clamping: written + 1)
    }

    /// DISCARD / WRITE_ZEROES: the data is an array of 16-byte segments
    /// `{sector u64, num_sectors u32, flags u32}` (flags bit 0: unmap, WRITE_ZEROES only).
    private func ranges(_ readable: [Descriptor], count: Int, type: UInt32, memory: GuestMemory) -> UInt8 {
        guard count > 0, count % 16 == 0, count / 16 <= Int(Self.maxRangeSegments) else { return Self.statusUnsupported }
        var segments = [UInt8](repeating: 0, count: count)
        copy(from: readable, at: 16, into: &segments, memory: memory)
        for i in 0..<(count / 16) {
            let sector = segments.loadLittleEndian(UInt64.self, at: i * 16)!
            let sectors = segments.loadLittleEndian(UInt32.self, at: i * 16 + 8)!
            let flags = segments.loadLittleEndian(UInt32.self, at: i * 16 + 12)!
            // Unknown flags, or unmap on DISCARD, are UNSUPP (§5.2.6.2).
            guard flags & ~1 == 0, type == Self.typeWriteZeroes || flags == 0 else { return Self.statusUnsupported }
            // An empty range is a no-op that succeeds (fallocate would refuse a zero length).
            if sectors == 0 { continue }
            guard sectors <= Self.maxRangeSectors, inRange(sector, Int(sectors) * Int(Self.sectorSize)) else {
                return Self.statusIOError
            }
            let offset = sector * Self.sectorSize, length = UInt64(sectors) * Self.sectorSize
            do {
                if type == Self.typeDiscard {
                    try backend.discard(at: offset, length: length)
                } else {
                    try backend.writeZeroes(at: offset, length: length, unmap: flags & 1 != 0)
                }
            } catch {
                log.report("I/O error", "\(error)")
                return Self.statusIOError
            }
        }
        return Self.statusOK
    }

    private func inRange(_ sector: UInt64, _ bytes: Int) -> Bool {
        let (start, o1) = sector.multipliedReportingOverflow(by: Self.sectorSize)
        let (end, o2) = start.addingReportingOverflow(UInt64(bytes))
        return !o1 && !o2 && end <= backend.size / Self.sectorSize * Self.sectorSize
    }

    /// Moves `count` bytes between the disk and the chain's segments starting at byte `skip`
    /// of the stream, in one vectored call (no bounce buffer: the vectors point into guest RAM,
    /// each range checked against it first). `io` returns the error of the call, if any.
    private func transfer(_ segments: [Descriptor], at skip: Int, count: Int, memory: GuestMemory, vectors: inout [iovec],
                          _ io: (UnsafeMutableBufferPointer<iovec>) -> SystemError?) -> UInt8 {
        vectors.removeAll(keepingCapacity: true)
        var streamOffset = 0
        var done = 0
        for d in segments where done < count {
            let length = Int(d.length)
            defer { streamOffset += length }
            let start = max(skip - streamOffset, 0)
            guard start < length else { continue }
            let n = min(length - start, count - done)
            guard let host = try? memory.hostPointer(GuestAddress(d.address.rawValue + UInt64(start)), length: UInt64(n)) else {
                return Self.statusIOError
            }
            vectors.append(iovec(iov_base: host, iov_len: n))
            done += n
        }
        if let error = vectors.withUnsafeMutableBufferPointer({ io($0) }) {
            log.report("I/O error", "\(error)")
            return Self.statusIOError
        }
        return Self.statusOK
    }

    /// Copies `out.count` bytes starting at byte `skip` of the segments' stream into `out`,
    /// reading only those bytes: descriptor lengths are the guest's, and a header inside a
    /// huge descriptor must not make the device read (or allocate) the whole descriptor.
    private func copy(from segments: [Descriptor], at skip: Int, into out: inout [UInt8], memory: GuestMemory) {
        var streamOffset = 0
        var done = 0
        for d in segments where done < out.count {
            let length = Int(d.length)
            defer { streamOffset += length }
            let start = max(skip + done - streamOffset, 0)
            guard start < length else { continue }
            let n = min(length - start, out.count - done)
            guard let source = try? memory.hostPointer(GuestAddress(d.address.rawValue + UInt64(start)), length: UInt64(n)) else { return }
            out.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: done).copyMemory(from: source, byteCount: n) }
            done += n
        }
    }

    @discardableResult
    private func copy(_ bytes: [UInt8], into segments: [Descriptor], memory: GuestMemory) -> Int {
        var done = 0
        for d in segments where done < bytes.count {
            let n = min(Int(d.length), bytes.count - done)
            try? memory.write(Array(bytes[done..<(done + n)]), to: d.address)
            done += n
        }
        return done
    }

    private func writeStatus(_ status: UInt8, into segments: [Descriptor], at streamOffset: Int, memory: GuestMemory) {
        var offset = streamOffset
        for d in segments {
            if offset < Int(d.length) {
                try? memory.store(status, at: GuestAddress(d.address.rawValue + UInt64(offset)))
                return
            }
            offset -= Int(d.length)
        }
    }
}
