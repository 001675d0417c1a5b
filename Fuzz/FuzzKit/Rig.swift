import Devices
import Glibc
import GuestMemory
import LinuxSupport
import PCI
import Virtio

/// Guest RAM for every run of a harness, mapped once (a mapping per input would cost syscalls
/// on every run): two regions with a hole between them, so buffers that run off a region or
/// across the hole are exercised too. `resetRAM` gives each input a fresh copy.
public let fuzzRAM: GuestMemory = try! GuestMemory(ranges: [(GuestAddress(0), 0x8000), (GuestAddress(0x9000), 0x7000)])

/// Zeroes guest RAM and copies `image` in from address 0 (bytes that fall in the hole are dropped).
public func resetRAM(with image: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
    for region in fuzzRAM.regions {
        region.host.initializeMemory(as: UInt8.self, repeating: 0, count: Int(region.size))
        let start = Int(region.start.rawValue)
        guard start < image.count else { continue }
        let n = min(image.count - start, Int(region.size))
        region.host.copyMemory(from: image.baseAddress! + start, byteCount: n)
    }
}

/// Whether `[pointer, pointer + length)` lies inside guest RAM's host mappings: every host
/// pointer a device hands to I/O must.
public func isInsideRAM(_ pointer: UnsafeRawPointer?, length: Int) -> Bool {
    guard let pointer else { return length == 0 }
    for r in fuzzRAM.regions where pointer >= UnsafeRawPointer(r.host) && pointer - UnsafeRawPointer(r.host) + length <= Int(r.size) {
        return true
    }
    return false
}

/// A disk in memory that checks what the device asks of it: every transfer inside the disk,
/// every buffer inside guest RAM, nothing written to a read-only disk.
public final class MemoryDisk: BlockBackend, @unchecked Sendable {
    private var bytes: [UInt8]
    public let isReadOnly: Bool
    public init(sectors: Int, readOnly: Bool) {
        bytes = [UInt8](repeating: 0xA5, count: sectors * 512)
        isReadOnly = readOnly
    }
    public var size: UInt64 { UInt64(bytes.count) }

    private func each(_ vectors: UnsafeMutableBufferPointer<iovec>, at offset: UInt64, _ body: (UnsafeMutableRawBufferPointer, Int) -> Void) {
        let total = vectors.reduce(0) { $0 + $1.iov_len }
        expect(offset <= size && UInt64(total) <= size - offset, "transfer [\(offset), +\(total)) outside a \(size)-byte disk")
        var position = Int(offset)
        for v in vectors {
            expect(isInsideRAM(v.iov_base, length: v.iov_len), "iovec outside guest RAM")
            body(UnsafeMutableRawBufferPointer(start: v.iov_base, count: v.iov_len), position)
            position += v.iov_len
        }
    }
    public func read(at offset: UInt64, into vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) {
        each(vectors, at: offset) { buffer, at in buffer.copyBytes(from: bytes[at..<at + buffer.count]) }
    }
    public func write(at offset: UInt64, from vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) {
        expect(!isReadOnly, "write to a read-only disk")
        each(vectors, at: offset) { buffer, at in
            for i in 0..<buffer.count { bytes[at + i] = buffer[i] }
        }
    }
    public func flush() throws(SystemError) {}
    public func discard(at offset: UInt64, length: UInt64) throws(SystemError) { checkRange(offset, length) }
    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(SystemError) {
        checkRange(offset, length)
        for i in Int(offset)..<Int(offset + length) { bytes[i] = 0 }
    }
    private func checkRange(_ offset: UInt64, _ length: UInt64) {
        expect(!isReadOnly, "discard or write-zeroes on a read-only disk")
        expect(offset <= size && length <= size - offset, "range [\(offset), +\(length)) outside a \(size)-byte disk")
    }
}

/// Interrupts of a device driven directly (no transport): counted, nothing more.
public final class CountingInterrupt: VirtioInterrupt, @unchecked Sendable {
    public var used = 0, config = 0, needsReset = 0
    public init() {}
    public func signalUsedBuffers(queue: Int) { used += 1 }
    public func signalConfigChange() { config += 1 }
    public func deviceNeedsReset() { needsReset += 1 }
}

/// The machine's side of a PCI function's interrupts, checking the contract: a vector is
/// signalled only while it has a route (the machine's irqfd would otherwise go nowhere, or to a
/// stale message), and only vectors the function has.
public final class CheckingSink: PCIInterruptSink, @unchecked Sendable {
    private var routes: [Int: MSIXMessage] = [:]
    public private(set) var signals = 0, intx = 0
    private let vectors: Int
    public init(vectors: Int) { self.vectors = vectors }
    public func route(vector: Int, message: MSIXMessage?) {
        expect(vector >= 0 && vector < vectors, "route for vector \(vector) of \(vectors)")
        routes[vector] = message
    }
    public func signal(vector: Int) {
        expect(vector >= 0 && vector < vectors, "signal of vector \(vector) of \(vectors)")
        expect(routes[vector] != nil, "signal of vector \(vector), which has no route")
        signals += 1
    }
    public func assertINTx() { intx += 1 }
}

/// The device behind a fuzzed transport: virtio-blk over a `MemoryDisk` (one queue), or, with
/// `console`, virtio-console (two queues, so queue selection and per-queue vectors and doorbells
/// are exercised too) with host input waiting for the guest's first receive buffers and output
/// checked to come from guest RAM.
public func makeDevice(console: Bool) -> any VirtioDevice {
    guard console else { return VirtioBlock(name: "vda", backend: MemoryDisk(sectors: 16, readOnly: false), serial: "fuzz") }
    let device = VirtioConsole(output: { expect(isInsideRAM($0.baseAddress, length: $0.count), "console output outside guest RAM") })
    device.receive(Array("fuzz input\n".utf8))
    return device
}

/// Queue notifications as the machine delivers them: handed to the device's I/O thread, never
/// run inside the access that rang (a device asking to be run again from inside its own queue
/// run would otherwise re-enter it). The harness drains them after each access.
public final class PendingNotifies: @unchecked Sendable {
    private var work: [() -> Void] = []
    public init() {}
    public func add(_ item: @escaping () -> Void) { work.append(item) }
    /// Runs the pending notifications (and those they cause, up to `rounds` times over).
    public func drain(rounds: Int = 4) {
        for _ in 0..<rounds where !work.isEmpty {
            let now = work
            work = []
            for item in now { item() }
        }
        work = []
    }
}
