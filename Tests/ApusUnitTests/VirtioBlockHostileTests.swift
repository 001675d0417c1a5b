import Devices
import Glibc
import GuestMemory
import LinuxSupport
import Locking
import Synchronization
import Testing
import Virtio

/// A disk that claims to be huge and moves no bytes: requests reach it only if the device
/// let them through.
final class HugeNullDisk: BlockBackend, @unchecked Sendable {
    let size: UInt64 = 1 << 40
    let isReadOnly = false
    var calls = 0
    func read(at offset: UInt64, into vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) { calls += 1 }
    func write(at offset: UInt64, from vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) { calls += 1 }
    func flush() throws(SystemError) {}
    func discard(at offset: UInt64, length: UInt64) throws(SystemError) {}
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(SystemError) {}
}

/// virtio-blk against a driver that breaks the rules or negotiates little (issue: hostile guest).
@Suite struct VirtioBlockHostileTests {
    /// Overlapping descriptors let a small RAM describe a huge read: 14 writable descriptors of
    /// 512 MiB each over the same RAM is 7 GiB, whose length used to overflow used.len (a trap).
    @Test func aReadLargerThanSizeMaxTimesSegMaxIsAnIOErrorNotACrash() throws {
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 512 << 20)])
        let disk = HugeNullDisk()
        let device = VirtioBlock(name: "vda", backend: disk, serial: "x")
        var driver = DriverQueue(memory: memory, size: 16)
        try device.activate(features: VirtioFeature.version1, queues: [driver.deviceQueue()], interrupt: RecordingInterrupt())
        try memory.store(UInt32(0), at: GuestAddress(0x8000))      // IN
        try memory.store(UInt64(0), at: GuestAddress(0x8008))      // sector 0
        try driver.setDescriptor(0, addr: 0x8000, len: 16, flags: 1, next: 1)
        for i in UInt16(1)...14 {
            try driver.setDescriptor(i, addr: 0x10_0000, len: (512 << 20) - 0x10_0000, flags: 1 | 2, next: i + 1)
        }
        try driver.setDescriptor(15, addr: 0xA000, len: 1, flags: 2)
        try driver.makeAvailable(0)
        device.processQueue(0)
        #expect(try memory.load(UInt8.self, at: GuestAddress(0xA000)) == VirtioBlock.statusIOError)
        #expect(try driver.usedElement(0).len == 1)
        #expect(disk.calls == 0)
    }

    @Test func aDriverWithNeitherFlushNorConfigWCEGetsWriteThrough() throws {
        let t = VirtioBlockTests()
        let disk = MemoryDisk(size: 8 * 512)
        var (device, driver, _) = try t.makeDevice(disk, features: VirtioFeature.version1)
        #expect(device.isWriteThrough)
        var wb: UInt8 = 9
        withUnsafeMutableBytes(of: &wb) { device.readConfig(offset: 32, into: $0) }
        #expect(wb == 0)
        withUnsafeBytes(of: UInt8(1)) { device.writeConfig(offset: 32, bytes: $0) }   // not negotiated: ignored
        #expect(device.isWriteThrough)
        try t.submit(&driver, type: 1, sector: 0, dataLength: 512, dataWritable: false)
        device.processQueue(0)
        #expect(try t.status() == VirtioBlock.statusOK && disk.flushes == 1)
    }

    @Test func flushWithoutConfigWCEIsWriteBackAndTheModeIsFixed() throws {
        let t = VirtioBlockTests()
        let (device, _, _) = try t.makeDevice(MemoryDisk(size: 8 * 512), features: VirtioFeature.version1 | VirtioBlockTests.flush)
        #expect(!device.isWriteThrough)
        withUnsafeBytes(of: UInt8(0)) { device.writeConfig(offset: 32, bytes: $0) }
        #expect(!device.isWriteThrough)
    }

    /// §5.2.6: a DISCARD or WRITE_ZEROES segment of zero sectors asks for nothing, and gets OK
    /// (fallocate itself refuses a zero length).
    @Test func emptyDiscardAndWriteZeroesSegmentsSucceed() throws {
        let (path, fd) = temporaryImage(size: 16 * 512)
        defer { unlink(path); close(fd) }
        let t = VirtioBlockTests()
        var (device, driver, _) = try t.makeDevice(try FileBlockBackend(path: path, readOnly: false))
        for type: UInt32 in [11, 13] {
            try t.memory.store(UInt64(3), at: GuestAddress(0x9000))
            try t.memory.store(UInt32(0), at: GuestAddress(0x9008))
            try t.memory.store(UInt32(0), at: GuestAddress(0x900C))
            try t.submit(&driver, type: type, sector: 0, dataLength: 16, dataWritable: false)
            device.processQueue(0)
            #expect(try t.status() == VirtioBlock.statusOK, "type \(type)")
        }
    }
}

/// A new empty file of `size` bytes under /tmp: its path and an open descriptor (the caller
/// unlinks and closes it).
func temporaryImage(size: Int) -> (path: String, fd: Int32) {
    var template = Array("/tmp/apus-unit-disk-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    _ = ftruncate(fd, off_t(size))
    return (String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self), fd)
}

@Suite struct FileBlockBackendTests {
    /// After a failed fdatasync the kernel may report success on the next one although the
    /// data never reached the disk: a FLUSH the driver retries must keep failing.
    @Test func aFailedFlushStaysFailed() throws {
        let (path, fd) = temporaryImage(size: 4096)
        defer { unlink(path); close(fd) }
        let calls = Atomic<Int>(0)
        let backend = try FileBlockBackend(path: path, readOnly: false, sync: { _ in
            if calls.add(1, ordering: .relaxed).oldValue == 0 { errno = EIO; return -1 }
            return 0
        })
        #expect(throws: SystemError.self) { try backend.flush() }
        #expect(throws: SystemError.self) { try backend.flush() }
        #expect(calls.load(ordering: .relaxed) == 1)
    }

    @Test func onlyRegularFilesAndBlockDevicesAreDisks() throws {
        #expect(throws: SystemError.self) { try FileBlockBackend(path: "/tmp", readOnly: true) }
        #expect(throws: SystemError.self) { try FileBlockBackend(path: "/dev/null", readOnly: true) }
        let (path, fd) = temporaryImage(size: 8192)
        defer { unlink(path); close(fd) }
        #expect(try FileBlockBackend(path: path, readOnly: true).size == 8192)
    }
}

@Suite struct VirtioConsoleHostileTests {
    /// A transmit descriptor is the guest's to size: 4 MiB goes out in 64 KiB pieces straight
    /// from guest memory (it used to be copied whole, then written one byte per system call).
    @Test func aHugeTransmitBufferGoesOutInPieces() throws {
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 8 << 20)])
        let pieces = Locked<[Int]>([])
        let console = VirtioConsole(output: { buffer in pieces.withLock { $0.append(buffer.count) } })
        let receive = DriverQueue(memory: memory, size: 8)
        var transmit = DriverQueue(memory: memory, size: 8, base: 0x10_0000)
        try console.activate(features: VirtioFeature.version1, queues: [receive.deviceQueue(), transmit.deviceQueue()],
                             interrupt: RecordingInterrupt())
        try transmit.setDescriptor(0, addr: 0x40_0000, len: 4 << 20)
        try transmit.makeAvailable(0)
        console.processQueue(1)
        let sizes = pieces.withLock { $0 }
        #expect(sizes.reduce(0, +) == 4 << 20)
        #expect(sizes.count == 64 && sizes.allSatisfy { $0 <= 64 * 1024 })
        #expect(try transmit.usedIdx() == 1)
    }
}
