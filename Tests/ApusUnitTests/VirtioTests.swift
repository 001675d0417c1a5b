import DeviceBus
import Devices
import Glibc
import GuestMemory
import LinuxSupport
import Locking
import Synchronization
import Testing
import Virtio

@Suite struct VirtioStateTests {
    let offered = VirtioFeature.version1 | 1 << 9

    @Test func featuresOKIsRefusedForUnofferedBitsOrMissingVersion1() {
        var s = VirtioState(offeredFeatures: offered, queueMaxSizes: [8])
        _ = s.writeStatus(DeviceStatus.acknowledge | DeviceStatus.driver)
        s.driverFeaturesSelect = 1
        s.writeDriverFeatures(1)                   // VERSION_1
        s.driverFeaturesSelect = 0
        s.writeDriverFeatures(1 << 9 | 1 << 3)     // bit 3 was not offered
        _ = s.writeStatus(DeviceStatus.acknowledge | DeviceStatus.driver | DeviceStatus.featuresOK)
        #expect(s.status & DeviceStatus.featuresOK == 0)

        s.writeDriverFeatures(1 << 9)
        s.driverFeaturesSelect = 1
        s.writeDriverFeatures(0)                   // dropped VERSION_1
        _ = s.writeStatus(DeviceStatus.acknowledge | DeviceStatus.driver | DeviceStatus.featuresOK)
        #expect(s.status & DeviceStatus.featuresOK == 0)

        s.writeDriverFeatures(1)
        _ = s.writeStatus(DeviceStatus.acknowledge | DeviceStatus.driver | DeviceStatus.featuresOK)
        #expect(s.status & DeviceStatus.featuresOK != 0)
        #expect(s.driverFeatures == offered)
        // Features are frozen after FEATURES_OK.
        s.writeDriverFeatures(0)
        #expect(s.driverFeatures == offered)
    }

    @Test func driverOKActivatesOnlyAfterFeaturesOKAndZeroResets() {
        var s = VirtioState(offeredFeatures: offered, queueMaxSizes: [8])
        #expect(s.writeStatus(DeviceStatus.acknowledge | DeviceStatus.driver | DeviceStatus.driverOK) == .none)
        #expect(s.status & DeviceStatus.driverOK == 0)
        s.driverFeaturesSelect = 1
        s.writeDriverFeatures(1)
        _ = s.writeStatus(DeviceStatus.acknowledge | DeviceStatus.driver | DeviceStatus.featuresOK)
        #expect(s.writeStatus(DeviceStatus.acknowledge | DeviceStatus.driver | DeviceStatus.featuresOK | DeviceStatus.driverOK) == .activate)
        s.queues[0].ready = true
        #expect(s.writeStatus(0) == .reset)
        #expect(s.status == 0 && s.driverFeatures == 0 && !s.queues[0].ready)
    }

    @Test func deviceFeatureWindows() {
        var s = VirtioState(offeredFeatures: offered, queueMaxSizes: [])
        #expect(s.deviceFeaturesWindow == 1 << 9)
        s.deviceFeaturesSelect = 1
        #expect(s.deviceFeaturesWindow == 1)
        s.deviceFeaturesSelect = 7
        #expect(s.deviceFeaturesWindow == 0)
    }
}

/// A memory-backed disk for device tests.
final class MemoryDisk: BlockBackend, @unchecked Sendable {
    var bytes: [UInt8]
    let isReadOnly: Bool
    var flushes = 0
    init(size: Int, readOnly: Bool = false) { bytes = [UInt8](repeating: 0, count: size); isReadOnly = readOnly }
    var size: UInt64 { UInt64(bytes.count) }
    /// How many vectors each read/write call got (VirtioBlock passes a request's segments in one).
    var vectorCounts: [Int] = []
    func read(at offset: UInt64, into vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) {
        vectorCounts.append(vectors.count)
        var position = Int(offset)
        for v in vectors {
            let buffer = UnsafeMutableRawBufferPointer(start: v.iov_base, count: v.iov_len)
            for i in 0..<buffer.count { buffer[i] = bytes[position + i] }
            position += buffer.count
        }
    }
    func write(at offset: UInt64, from vectors: UnsafeMutableBufferPointer<iovec>) throws(SystemError) {
        vectorCounts.append(vectors.count)
        var position = Int(offset)
        for v in vectors {
            let data = UnsafeRawBufferPointer(start: v.iov_base, count: v.iov_len)
            for i in 0..<data.count { bytes[position + i] = data[i] }
            position += data.count
        }
    }
    func flush() throws(SystemError) { flushes += 1 }
    func discard(at offset: UInt64, length: UInt64) throws(SystemError) {}
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(SystemError) {
        for i in 0..<Int(length) { bytes[Int(offset) + i] = 0 }
    }
}

final class RecordingInterrupt: VirtioInterrupt, @unchecked Sendable {
    var used = 0, config = 0, needsReset = 0, servedAgain = 0
    func serveAgain(queue: Int) { servedAgain += 1 }
    func signalUsedBuffers(queue: Int) { used += 1 }
    func signalConfigChange() { config += 1 }
    func deviceNeedsReset() { needsReset += 1 }
}

@Suite struct VirtioBlockTests {
    static let flush: UInt64 = 1 << 9, configWCE: UInt64 = 1 << 11
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x10_0000)])

    /// Builds a request: header at 0x8000, data at 0x9000, status at 0xA000.
    func submit(_ driver: inout DriverQueue, type: UInt32, sector: UInt64, dataLength: UInt32, dataWritable: Bool) throws {
        try memory.store(type, at: GuestAddress(0x8000))
        try memory.store(UInt32(0), at: GuestAddress(0x8004))
        try memory.store(sector, at: GuestAddress(0x8008))
        try memory.store(UInt8(0xFF), at: GuestAddress(0xA000))
        let head = driver.availIdx % driver.size * 3 % driver.size
        try driver.setDescriptor(head, addr: 0x8000, len: 16, flags: 1, next: head + 1)
        if dataLength > 0 {
            try driver.setDescriptor(head + 1, addr: 0x9000, len: dataLength, flags: 1 | (dataWritable ? 2 : 0), next: head + 2)
            try driver.setDescriptor(head + 2, addr: 0xA000, len: 1, flags: 2)
        } else {
            try driver.setDescriptor(head + 1, addr: 0xA000, len: 1, flags: 2)
        }
        try driver.makeAvailable(head)
    }

    func makeDevice(_ disk: any BlockBackend, features: UInt64 = VirtioFeature.version1 | VirtioBlockTests.flush) throws -> (VirtioBlock, DriverQueue, RecordingInterrupt) {
        let device = VirtioBlock(name: "vda", backend: disk, serial: "apus-test")
        let driver = DriverQueue(memory: memory, size: 16)
        let interrupt = RecordingInterrupt()
        try device.activate(features: features, queues: [driver.deviceQueue()], interrupt: interrupt)
        return (device, driver, interrupt)
    }

    func status() throws -> UInt8 { try memory.load(UInt8.self, at: GuestAddress(0xA000)) }

    @Test func writesThenReadsSectors() throws {
        let disk = MemoryDisk(size: 64 * 512)
        var (device, driver, interrupt) = try makeDevice(disk)
        try memory.write([UInt8](repeating: 0xAB, count: 512), to: GuestAddress(0x9000))
        try submit(&driver, type: 1, sector: 3, dataLength: 512, dataWritable: false)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusOK)
        #expect(disk.bytes[3 * 512] == 0xAB && disk.bytes[4 * 512 - 1] == 0xAB && disk.bytes[4 * 512] == 0)
        #expect(interrupt.used == 1)

        try memory.zero(GuestAddress(0x9000), count: 512)
        try submit(&driver, type: 0, sector: 3, dataLength: 512, dataWritable: true)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusOK)
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x9000 + 511)) == 0xAB)
        #expect(try driver.usedElement(1).len == 513)
    }

    @Test func aScatteredReadIsOneVectoredCallInSegmentOrder() throws {
        let disk = MemoryDisk(size: 64 * 512)
        for i in 0..<1024 { disk.bytes[2 * 512 + i] = UInt8(truncatingIfNeeded: i / 4) }
        var (device, driver, _) = try makeDevice(disk)
        // header, then 1024 bytes in three writable segments (512 + 256 + 256), then status.
        try memory.store(UInt32(0), at: GuestAddress(0x8000))
        try memory.store(UInt64(2), at: GuestAddress(0x8008))
        try driver.setDescriptor(0, addr: 0x8000, len: 16, flags: 1, next: 1)
        try driver.setDescriptor(1, addr: 0x9000, len: 512, flags: 3, next: 2)
        try driver.setDescriptor(2, addr: 0xB000, len: 256, flags: 3, next: 3)
        try driver.setDescriptor(3, addr: 0x9400, len: 256, flags: 3, next: 4)
        try driver.setDescriptor(4, addr: 0xA000, len: 1, flags: 2)
        try driver.makeAvailable(0)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusOK)
        #expect(disk.vectorCounts == [3])
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x9000 + 511)) == 127)
        #expect(try memory.load(UInt8.self, at: GuestAddress(0xB000)) == 128)
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x9400 + 255)) == 255)
        #expect(try driver.usedElement(0).len == 1025)
    }

    @Test func badRequestsGetTheSpecsStatus() throws {
        let disk = MemoryDisk(size: 8 * 512)
        var (device, driver, _) = try makeDevice(disk)
        try submit(&driver, type: 0, sector: 8, dataLength: 512, dataWritable: true)       // past the end
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusIOError)
        try submit(&driver, type: 0, sector: UInt64.max / 2, dataLength: 512, dataWritable: true)  // overflow
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusIOError)
        try submit(&driver, type: 0, sector: 0, dataLength: 100, dataWritable: true)       // not whole sectors
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusIOError)
        try submit(&driver, type: 77, sector: 0, dataLength: 0, dataWritable: false)       // unknown type
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusUnsupported)
        try submit(&driver, type: 4, sector: 0, dataLength: 0, dataWritable: false)        // flush
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusOK && disk.flushes == 1)
    }

    @Test func readOnlyDisksRefuseWritesAndAdvertiseIt() throws {
        let disk = MemoryDisk(size: 8 * 512, readOnly: true)
        var (device, driver, _) = try makeDevice(disk)
        #expect(device.offeredFeatures & (1 << 5) != 0)
        try submit(&driver, type: 1, sector: 0, dataLength: 512, dataWritable: false)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusIOError)
        #expect(disk.bytes.allSatisfy { $0 == 0 })
    }

    @Test func getIDAndCapacity() throws {
        let disk = MemoryDisk(size: 8 * 512)
        var (device, driver, _) = try makeDevice(disk)
        try submit(&driver, type: 8, sector: 0, dataLength: 20, dataWritable: true)
        device.processQueue(0)
        #expect(try memory.readBytes(GuestAddress(0x9000), count: 9) == Array("apus-test".utf8))
        var capacity: UInt64 = 0
        withUnsafeMutableBytes(of: &capacity) { device.readConfig(offset: 0, into: $0) }
        #expect(capacity == 8)
        var beyond: UInt32 = 0xFFFF
        withUnsafeMutableBytes(of: &beyond) { device.readConfig(offset: 4000, into: $0) }
        #expect(beyond == 0)
    }

    @Test func aHeaderSplitAcrossDescriptorsWorks() throws {
        // VERSION_1 implies ANY_LAYOUT: header bytes 0-7 in one descriptor, 8-15 and the data
        // in the next.
        let disk = MemoryDisk(size: 8 * 512)
        var (device, driver, _) = try makeDevice(disk)
        try memory.store(UInt32(1), at: GuestAddress(0x8000))          // OUT
        try memory.store(UInt64(2), at: GuestAddress(0x9000))          // sector 2
        try memory.write([UInt8](repeating: 0x3C, count: 512), to: GuestAddress(0x9008))
        try driver.setDescriptor(0, addr: 0x8000, len: 8, flags: 1, next: 1)
        try driver.setDescriptor(1, addr: 0x9000, len: 520, flags: 1, next: 2)
        try driver.setDescriptor(2, addr: 0xA000, len: 1, flags: 2)
        try driver.makeAvailable(0)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusOK)
        #expect(disk.bytes[2 * 512] == 0x3C && disk.bytes[3 * 512 - 1] == 0x3C && disk.bytes[3 * 512] == 0)
    }

    @Test func writeZeroesAndDiscardRanges() throws {
        let disk = MemoryDisk(size: 16 * 512)
        disk.bytes = [UInt8](repeating: 0xEE, count: 16 * 512)
        var (device, driver, _) = try makeDevice(disk)
        func segment(_ sector: UInt64, _ count: UInt32, _ flags: UInt32) throws {
            try memory.store(sector, at: GuestAddress(0x9000))
            try memory.store(count, at: GuestAddress(0x9008))
            try memory.store(flags, at: GuestAddress(0x900C))
        }
        try segment(2, 3, 0)
        try submit(&driver, type: 13, sector: 0, dataLength: 16, dataWritable: false)   // WRITE_ZEROES
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusOK)
        #expect(disk.bytes[2 * 512 - 1] == 0xEE && disk.bytes[2 * 512] == 0 && disk.bytes[5 * 512 - 1] == 0 && disk.bytes[5 * 512] == 0xEE)
        try segment(0, 1, 1)                                                              // unmap on DISCARD
        try submit(&driver, type: 11, sector: 0, dataLength: 16, dataWritable: false)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusUnsupported)
        try segment(15, 2, 0)                                                             // past the end
        try submit(&driver, type: 11, sector: 0, dataLength: 16, dataWritable: false)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusIOError)
    }

    @Test func writeThroughFlushesEveryWrite() throws {
        let disk = MemoryDisk(size: 8 * 512)
        var (device, driver, _) = try makeDevice(disk, features: VirtioFeature.version1 | Self.flush | Self.configWCE)
        var wb: UInt8 = 9
        withUnsafeMutableBytes(of: &wb) { device.readConfig(offset: 32, into: $0) }
        #expect(wb == 1)                                        // write-back by default
        withUnsafeBytes(of: UInt8(0)) { device.writeConfig(offset: 32, bytes: $0) }
        #expect(device.isWriteThrough)
        try submit(&driver, type: 1, sector: 0, dataLength: 512, dataWritable: false)
        device.processQueue(0)
        #expect(try status() == VirtioBlock.statusOK && disk.flushes == 1)
        device.reset()
        #expect(!device.isWriteThrough)
    }

    @Test func fileBackendPunchesHolesAndZeroesRanges() throws {
        let (path, fd) = temporaryImage(size: 0)
        defer { unlink(path); close(fd) }
        let pattern = [UInt8](repeating: 0x77, count: 8192)
        #expect(pattern.withUnsafeBytes { pwrite(fd, $0.baseAddress!, 8192, 0) } == 8192)
        let backend = try FileBlockBackend(path: path, readOnly: false)
        try backend.writeZeroes(at: 0, length: 4096, unmap: false)
        try backend.discard(at: 4096, length: 4096)
        let back = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 16)
        defer { back.deallocate() }
        var whole = [iovec(iov_base: back.baseAddress!, iov_len: 8192)]
        try whole.withUnsafeMutableBufferPointer { v throws(SystemError) in try backend.read(at: 0, into: v) }
        #expect(back.allSatisfy { $0 == 0 })
        // A vectored write takes the vectors in order, not in memory order; a read past the
        // end of the file yields zeros.
        back.initializeMemory(as: UInt8.self, repeating: 2)
        back[0..<100].initializeMemory(as: UInt8.self, repeating: 1)
        var out = [iovec(iov_base: back.baseAddress! + 100, iov_len: 412), iovec(iov_base: back.baseAddress!, iov_len: 100)]
        try out.withUnsafeMutableBufferPointer { v throws(SystemError) in try backend.write(at: 8192, from: v) }
        back.initializeMemory(as: UInt8.self, repeating: 0xEE)
        var two = [iovec(iov_base: back.baseAddress!, iov_len: 500), iovec(iov_base: back.baseAddress! + 500, iov_len: 524)]
        try two.withUnsafeMutableBufferPointer { v throws(SystemError) in try backend.read(at: 8192, into: v) }
        #expect(back[0..<412].allSatisfy { $0 == 2 } && back[412..<512].allSatisfy { $0 == 1 })
        #expect(back[512..<1024].allSatisfy { $0 == 0 })
        // A second writable open of the same image is refused (exclusive lock).
        #expect(throws: SystemError.self) { try FileBlockBackend(path: path, readOnly: false) }
    }

    @Test func aMalformedChainAsksForAReset() throws {
        let disk = MemoryDisk(size: 8 * 512)
        var (device, driver, interrupt) = try makeDevice(disk)
        try driver.setDescriptor(0, addr: 0x8000, len: 16, flags: 1, next: 0)   // loop
        try driver.makeAvailable(0)
        device.processQueue(0)
        #expect(interrupt.needsReset == 1)
    }
}

@Suite struct VirtioMMIOTests {
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x10_0000)])

    func read32(_ t: VirtioMMIO, _ offset: UInt64) -> UInt32 {
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { t.read(offset: offset, data: $0) }
        return v
    }
    func write32(_ t: VirtioMMIO, _ offset: UInt64, _ value: UInt32) {
        withUnsafeBytes(of: value) { t.write(offset: offset, data: $0) }
    }

    @Test func identityRegistersAndTheDriverInitSequence() throws {
        let interrupts = Atomic<Int>(0)
        let notified = Locked<[Int]>([])
        let device = VirtioBlock(name: "vda", backend: MemoryDisk(size: 4096), serial: "x")
        let t = VirtioMMIO(device: device, memory: memory, raiseInterrupt: { interrupts.add(1, ordering: .relaxed) },
                           notify: { q in notified.withLock { $0.append(q) } })
        #expect(read32(t, VirtioMMIO.Register.magicValue.rawValue) == 0x7472_6976)
        #expect(read32(t, VirtioMMIO.Register.version.rawValue) == 2)
        #expect(read32(t, VirtioMMIO.Register.deviceID.rawValue) == 2)
        write32(t, VirtioMMIO.Register.status.rawValue, 3)
        write32(t, VirtioMMIO.Register.deviceFeaturesSel.rawValue, 1)
        #expect(read32(t, VirtioMMIO.Register.deviceFeatures.rawValue) & 1 == 1)   // VERSION_1
        write32(t, VirtioMMIO.Register.driverFeaturesSel.rawValue, 1)
        write32(t, VirtioMMIO.Register.driverFeatures.rawValue, 1)
        write32(t, VirtioMMIO.Register.status.rawValue, 3 | 8)
        #expect(read32(t, VirtioMMIO.Register.status.rawValue) & 8 == 8)
        write32(t, VirtioMMIO.Register.queueSel.rawValue, 0)
        #expect(read32(t, VirtioMMIO.Register.queueNumMax.rawValue) == 256)
        write32(t, VirtioMMIO.Register.queueNum.rawValue, 16)
        write32(t, VirtioMMIO.Register.queueDescLow.rawValue, 0x1000)
        write32(t, VirtioMMIO.Register.queueDriverLow.rawValue, 0x3000)
        write32(t, VirtioMMIO.Register.queueDeviceLow.rawValue, 0x4000)
        write32(t, VirtioMMIO.Register.queueReady.rawValue, 1)
        write32(t, VirtioMMIO.Register.status.rawValue, 3 | 8 | 4)
        #expect(read32(t, VirtioMMIO.Register.status.rawValue) == 15)
        // Notify without an ioeventfd still reaches the device's queue.
        write32(t, VirtioMMIO.Register.queueNotify.rawValue, 0)
        write32(t, VirtioMMIO.Register.queueNotify.rawValue, 9)        // no such queue: ignored
        #expect(notified.withLock { $0 } == [0])
        // Non-32-bit register accesses are ignored.
        withUnsafeBytes(of: UInt16(0)) { t.write(offset: VirtioMMIO.Register.status.rawValue, data: $0) }
        #expect(read32(t, VirtioMMIO.Register.status.rawValue) == 15)
        write32(t, VirtioMMIO.Register.status.rawValue, 0)
        #expect(read32(t, VirtioMMIO.Register.status.rawValue) == 0 && read32(t, VirtioMMIO.Register.queueReady.rawValue) == 0)
    }

    /// The I/O thread finds a broken ring while a reset waits for its queue run: what it
    /// reports belongs to the old queues, and the status must read 0 after the reset.
    @Test func aResetLeavesNothingOfTheQueueRunItWaitedFor() {
        let device = BrokenRunDuringReset()
        let t = VirtioMMIO(device: device, memory: memory, raiseInterrupt: {}, notify: { _ in })
        write32(t, VirtioMMIO.Register.status.rawValue, 3)
        write32(t, VirtioMMIO.Register.driverFeaturesSel.rawValue, 1)
        write32(t, VirtioMMIO.Register.driverFeatures.rawValue, 1)
        write32(t, VirtioMMIO.Register.status.rawValue, 11)
        write32(t, VirtioMMIO.Register.queueNum.rawValue, 8)
        write32(t, VirtioMMIO.Register.queueDescLow.rawValue, 0x1000)
        write32(t, VirtioMMIO.Register.queueDriverLow.rawValue, 0x2000)
        write32(t, VirtioMMIO.Register.queueDeviceLow.rawValue, 0x3000)
        write32(t, VirtioMMIO.Register.queueReady.rawValue, 1)
        write32(t, VirtioMMIO.Register.status.rawValue, 15)
        #expect(read32(t, VirtioMMIO.Register.status.rawValue) == 15)
        write32(t, VirtioMMIO.Register.status.rawValue, 0)
        #expect(device.resets == 1)
        #expect(read32(t, VirtioMMIO.Register.status.rawValue) == 0)
        #expect(read32(t, VirtioMMIO.Register.interruptStatus.rawValue) == 0)
    }

    @Test func aBrokenQueueAtDriverOKNeedsReset() {
        let device = VirtioBlock(name: "vda", backend: MemoryDisk(size: 4096), serial: "x")
        let t = VirtioMMIO(device: device, memory: memory, raiseInterrupt: {}, notify: { _ in })
        write32(t, VirtioMMIO.Register.status.rawValue, 3)
        write32(t, VirtioMMIO.Register.driverFeaturesSel.rawValue, 1)
        write32(t, VirtioMMIO.Register.driverFeatures.rawValue, 1)
        write32(t, VirtioMMIO.Register.status.rawValue, 11)
        write32(t, VirtioMMIO.Register.queueNum.rawValue, 16)
        write32(t, VirtioMMIO.Register.queueDescLow.rawValue, 0xFFFF_F000)      // outside RAM
        write32(t, VirtioMMIO.Register.queueReady.rawValue, 1)
        write32(t, VirtioMMIO.Register.status.rawValue, 15)
        #expect(read32(t, VirtioMMIO.Register.status.rawValue) & UInt32(DeviceStatus.deviceNeedsReset) != 0)
        #expect(read32(t, VirtioMMIO.Register.interruptStatus.rawValue) & VirtioMMIO.interruptConfigChange != 0)
        write32(t, VirtioMMIO.Register.interruptACK.rawValue, VirtioMMIO.interruptConfigChange)
        #expect(read32(t, VirtioMMIO.Register.interruptStatus.rawValue) == 0)
    }
}

/// A device whose queue run, still in progress when the driver resets it, finds a broken ring:
/// `reset` (which in a real device waits for that run) reports it before returning, as the
/// I/O thread would.
final class BrokenRunDuringReset: VirtioDevice, @unchecked Sendable {
    let deviceType: UInt32 = 4
    let name = "rng"
    let offeredFeatures = VirtioFeature.version1
    let queueMaxSizes: [UInt16] = [8]
    private let state = Locked<(interrupt: (any VirtioInterrupt)?, resets: Int)>((nil, 0))
    var resets: Int { state.withLock { $0.resets } }
    func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) { readConfigBytes([], offset: offset, into: buffer) }
    func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {
        state.withLock { $0.interrupt = interrupt }
    }
    func processQueue(_ index: Int) {}
    func reset() {
        let interrupt = state.withLock { s in
            defer { s = (nil, s.resets + 1) }
            return s.interrupt
        }
        interrupt?.deviceNeedsReset()
    }
}
