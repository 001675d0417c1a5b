import Diagnostics
import Devices
import Glibc
import GuestMemory
import LinuxSupport
import Synchronization
import Testing
import Virtio
@testable import ApusCLI

/// A backend with frames queued for the guest and a record of what the guest sent.
final class FakeNetBackend: NetBackend, @unchecked Sendable {
    var incoming: [[UInt8]] = []
    var sent: [[UInt8]] = []
    /// While set, `send` answers EAGAIN.
    var full = false
    var headerSize = 0
    var offloads: UInt64 = 0
    let fd: Int32 = -1
    var mtu: Int? { 1500 }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        guard !incoming.isEmpty else { return 0 }
        let frame = incoming.removeFirst()
        let n = min(frame.count, buffer.count)
        for i in 0..<n { buffer[i] = frame[i] }
        return n
    }
    func send(_ pieces: UnsafeBufferPointer<iovec>) throws(SystemError) -> Bool {
        if full { return false }
        var frame: [UInt8] = []
        for p in pieces { frame += UnsafeRawBufferPointer(start: p.iov_base, count: p.iov_len) }
        sent.append(frame)
        return true
    }
    func setHeaderSize(_ bytes: Int) throws(SystemError) { headerSize = bytes }
    func setGuestOffloads(_ features: UInt64) throws(SystemError) { offloads = features }
    var enabled: Bool?
    func setEnabled(_ on: Bool) throws(SystemError) { enabled = on }
    var uso = false
    var carriesUSO: Bool { uso }
}

@Suite struct VirtioNetTests {
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x40_0000)])
    let events = GuestEventLog.discard
    static let all = VirtioNetFeature.offered

    /// A frame as the tap hands it over: a 12-byte header (num_buffers left 0) and `payload`
    /// bytes counting up from `seed`.
    static func frame(_ payload: Int, seed: UInt8 = 0, headerSize: Int = 12) -> [UInt8] {
        [UInt8](repeating: 0, count: headerSize) + (0..<payload).map { UInt8(truncatingIfNeeded: Int(seed) + $0) }
    }

    struct Rig {
        let device: VirtioNet
        let backend: FakeNetBackend
        var rx: DriverQueue, tx: DriverQueue, ctrl: DriverQueue
        let interrupt: RecordingInterrupt
        let log: GuestEventLog
    }

    func rig(features: UInt64 = all) throws -> Rig {
        let backend = FakeNetBackend()
        let log = GuestEventLog(sink: { _ in })
        let device = try VirtioNet(backend: backend, mac: [0x52, 0x54, 0, 1, 2, 3], log: log.device("net"))
        let rx = DriverQueue(memory: memory, size: 16, base: 0)
        let tx = DriverQueue(memory: memory, size: 16, base: 0x10000)
        let ctrl = DriverQueue(memory: memory, size: 16, base: 0x20000)
        let interrupt = RecordingInterrupt()
        try device.activate(features: features, queues: [rx.deviceQueue(), tx.deviceQueue(), ctrl.deviceQueue()], interrupt: interrupt)
        return Rig(device: device, backend: backend, rx: rx, tx: tx, ctrl: ctrl, interrupt: interrupt, log: log)
    }

    /// Posts a one-buffer receive chain of `length` bytes at `address`, descriptor `index`.
    func postReceive(_ q: inout DriverQueue, index: UInt16, address: UInt64, length: UInt32) throws {
        try q.setDescriptor(index, addr: address, len: length, flags: 2)
        try q.makeAvailable(index)
    }

    @Test func aFrameSpansMergeableBuffersAndSaysHowMany() throws {
        var r = try rig()
        try postReceive(&r.rx, index: 0, address: 0x100000, length: 1536)
        try postReceive(&r.rx, index: 1, address: 0x101000, length: 1536)
        let frame = Self.frame(2988, seed: 7)
        r.backend.incoming = [frame]
        r.device.processQueue(0)
        #expect(try r.rx.usedIdx() == 2)
        #expect(try r.rx.usedElement(0) == (0, 1536))
        #expect(try r.rx.usedElement(1) == (1, 1464))
        #expect(try memory.load(UInt16.self, at: GuestAddress(0x10000A)) == 2)  // num_buffers
        let first = try memory.readBytes(GuestAddress(0x100000 + 12), count: 1524)
        let second = try memory.readBytes(GuestAddress(0x101000), count: 1464)
        #expect(first + second == Array(frame[12...]))
        #expect(r.interrupt.used == 1)
    }

    @Test func aFrameWithoutBuffersWaitsAndNothingIsLost() throws {
        var r = try rig()
        r.backend.incoming = [Self.frame(100, seed: 1), Self.frame(200, seed: 2)]
        r.device.processQueue(0)
        // Nothing to put it in: the first frame is held, the second stays in the backend.
        #expect(try r.rx.usedIdx() == 0)
        #expect(r.backend.incoming.count == 1)
        try postReceive(&r.rx, index: 0, address: 0x100000, length: 1536)
        r.device.processQueue(0)
        #expect(try r.rx.usedIdx() == 1)
        #expect(try r.rx.usedElement(0) == (0, 112))
        try postReceive(&r.rx, index: 1, address: 0x101000, length: 1536)
        r.device.processQueue(0)
        #expect(try r.rx.usedElement(1) == (1, 212))
        #expect(try memory.readBytes(GuestAddress(0x101000 + 12), count: 200) == Array(Self.frame(200, seed: 2)[12...]))
    }

    @Test func aFrameMergeableBuffersCannotHoldYetWaitsForMore() throws {
        var r = try rig()
        try postReceive(&r.rx, index: 0, address: 0x100000, length: 1000)
        r.backend.incoming = [Self.frame(1500)]
        r.device.processQueue(0)
        // One 1000-byte buffer for a 1512-byte frame: put back, the frame waits.
        #expect(try r.rx.usedIdx() == 0)
        try postReceive(&r.rx, index: 1, address: 0x101000, length: 1000)
        r.device.processQueue(0)
        #expect(try r.rx.usedIdx() == 2)
        #expect(try memory.load(UInt16.self, at: GuestAddress(0x10000A)) == 2)
    }

    @Test func tinyReceiveBuffersDropTheFrameAndSaySoOnce() throws {
        var r = try rig(features: Self.all & ~VirtioNetFeature.mrgRxbuf)
        try postReceive(&r.rx, index: 0, address: 0x100000, length: 1)
        try postReceive(&r.rx, index: 1, address: 0x101000, length: 1)
        r.backend.incoming = [Self.frame(60), Self.frame(60)]
        r.device.processQueue(0)
        #expect(try r.rx.usedIdx() == 2)
        #expect(try r.rx.usedElement(0).len == 0)
        #expect(r.log.count("net", cause: "receive buffer too small") == 2)
        #expect(r.backend.incoming.isEmpty)
    }

    @Test func withoutMergeableBuffersNumBuffersIsOne() throws {
        var r = try rig(features: Self.all & ~VirtioNetFeature.mrgRxbuf)
        try postReceive(&r.rx, index: 0, address: 0x100000, length: 2048)
        r.backend.incoming = [Self.frame(1000)]
        r.device.processQueue(0)
        #expect(try r.rx.usedElement(0) == (0, 1012))
        #expect(try memory.load(UInt16.self, at: GuestAddress(0x10000A)) == 1)
    }

    /// Posts a transmit chain: the header and the payload in two readable descriptors.
    func postTransmit(_ q: inout DriverQueue, index: UInt16, payload: [UInt8], at address: UInt64) throws {
        try memory.write([UInt8](repeating: 0, count: 12), to: GuestAddress(address))
        try memory.write(payload, to: GuestAddress(address + 0x100))
        try q.setDescriptor(index, addr: address, len: 12, flags: 1, next: index + 1)
        try q.setDescriptor(index + 1, addr: address + 0x100, len: UInt32(payload.count))
        try q.makeAvailable(index)
    }

    @Test func transmitGathersTheChainIntoOneFrame() throws {
        var r = try rig()
        let payload = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        try postTransmit(&r.tx, index: 0, payload: payload, at: 0x200000)
        r.device.processQueue(1)
        #expect(r.backend.sent == [[UInt8](repeating: 0, count: 12) + payload])
        #expect(try r.tx.usedIdx() == 1)
        #expect(r.interrupt.used == 1)
    }

    @Test func aFullBackendHoldsTheFrameUntilWritable() throws {
        var r = try rig()
        r.backend.full = true
        try postTransmit(&r.tx, index: 0, payload: [1, 2, 3], at: 0x200000)
        try postTransmit(&r.tx, index: 2, payload: [4, 5, 6], at: 0x201000)
        r.device.processQueue(1)
        // The first frame was copied aside and its chain returned; the second waits in the ring.
        #expect(r.backend.sent.isEmpty)
        #expect(try r.tx.usedIdx() == 1)
        r.backend.full = false
        r.device.processQueue(1)
        #expect(r.backend.sent.map { Array($0[12...]) } == [[1, 2, 3], [4, 5, 6]])
        #expect(try r.tx.usedIdx() == 2)
    }

    @Test func badTransmitChainsAreDroppedAndCounted() throws {
        var r = try rig()
        // Only a header.
        try r.tx.setDescriptor(0, addr: 0x200000, len: 12)
        try r.tx.makeAvailable(0)
        // A device-writable buffer in a transmit chain.
        try r.tx.setDescriptor(1, addr: 0x200000, len: 12, flags: 1, next: 2)
        try r.tx.setDescriptor(2, addr: 0x201000, len: 100, flags: 2)
        try r.tx.makeAvailable(1)
        // Over 64 KiB.
        try r.tx.setDescriptor(3, addr: 0x200000, len: 12, flags: 1, next: 4)
        try r.tx.setDescriptor(4, addr: 0x210000, len: 70000)
        try r.tx.makeAvailable(3)
        r.device.processQueue(1)
        #expect(r.backend.sent.isEmpty)
        #expect(try r.tx.usedIdx() == 3)
        #expect(r.log.count("net", cause: "transmit chain holds only a header") == 1)
        #expect(r.log.count("net", cause: "device-writable buffer in a transmit chain") == 1)
        #expect(r.log.count("net", cause: "frame over 64 KiB") == 1)
        #expect(r.interrupt.needsReset == 0)
    }

    /// Sends a control command; returns the ack byte.
    func control(_ r: inout Rig, _ command: [UInt8], index: UInt16 = 0) throws -> UInt8 {
        try memory.write(command, to: GuestAddress(0x300000))
        try memory.store(UInt8(0xFF), at: GuestAddress(0x301000))
        try r.ctrl.setDescriptor(index, addr: 0x300000, len: UInt32(command.count), flags: 1, next: index + 1)
        try r.ctrl.setDescriptor(index + 1, addr: 0x301000, len: 1, flags: 2)
        try r.ctrl.makeAvailable(index)
        r.device.processQueue(2)
        return try memory.load(UInt8.self, at: GuestAddress(0x301000))
    }

    @Test func theControlQueueSetsOffloadsAndRefusesWhatWasNotNegotiated() throws {
        var r = try rig(features: Self.all & ~VirtioNetFeature.guestTSO6)
        #expect(r.backend.offloads == Self.all & VirtioNetFeature.guestOffloads & ~VirtioNetFeature.guestTSO6)
        let csumOnly = [UInt8](littleEndian: VirtioNetFeature.guestCsum)
        #expect(try control(&r, [5, 0] + csumOnly) == 0)
        #expect(r.backend.offloads == VirtioNetFeature.guestCsum)
        #expect(try control(&r, [5, 0] + [UInt8](littleEndian: VirtioNetFeature.guestTSO6), index: 2) == 1)
        #expect(r.backend.offloads == VirtioNetFeature.guestCsum)
        #expect(try control(&r, [0, 0, 1], index: 4) == 0)         // PROMISC on
        #expect(try control(&r, [0, 0], index: 6) == 1)            // no data
        #expect(try control(&r, [1, 0] + [0, 0, 0, 0] + [1, 0, 0, 0] + [1, 0, 0x5e, 0, 0, 1], index: 8) == 0)
        #expect(try control(&r, [1, 0] + [9, 0, 0, 0], index: 10) == 1)   // a table longer than its bytes
        #expect(try control(&r, [9, 9], index: 12) == 1)
    }

    @Test func theHeaderSizeFollowsTheNegotiatedFeatures() {
        #expect(VirtioNetHeader.size(features: VirtioFeature.version1) == 12)
        #expect(VirtioNetHeader.size(features: VirtioNetFeature.mrgRxbuf) == 12)
        #expect(VirtioNetHeader.size(features: VirtioNetFeature.csum) == 10)
        #expect(VirtioNetHeader.tapOffloads(guestOffloads: VirtioNetFeature.guestTSO4) == 0)
        #expect(VirtioNetHeader.tapOffloads(guestOffloads: VirtioNetFeature.guestOffloads)
                == TapDevice.offloadChecksum | TapDevice.offloadTSO4 | TapDevice.offloadTSO6 | TapDevice.offloadTSOECN
                | TapDevice.offloadUSO4 | TapDevice.offloadUSO6)
        #expect(VirtioNetHeader.tapOffloads(guestOffloads: VirtioNetFeature.guestCsum | VirtioNetFeature.guestECN)
                == TapDevice.offloadChecksum)   // ECN means nothing without TSO
    }

    @Test func aLegacyDriverGetsTenByteHeaders() throws {
        var r = try rig(features: VirtioNetFeature.csum | VirtioNetFeature.guestCsum)
        #expect(r.backend.headerSize == 10)
        try postReceive(&r.rx, index: 0, address: 0x100000, length: 2048)
        r.backend.incoming = [Self.frame(100, headerSize: 10)]
        r.device.processQueue(0)
        #expect(try r.rx.usedElement(0) == (0, 110))
    }

    @Test func usoIsOfferedOnlyWhereTheBackendCarriesIt() throws {
        #expect(try VirtioNet(backend: FakeNetBackend(), mac: [2, 0, 0, 0, 0, 1]).offeredFeatures & VirtioNetFeature.uso == 0)
        let uso = FakeNetBackend()
        uso.uso = true
        #expect(try VirtioNet(backend: uso, mac: [2, 0, 0, 0, 0, 1]).offeredFeatures & VirtioNetFeature.uso == VirtioNetFeature.uso)
    }

    @Test func configSpaceHoldsTheMACLinkAndMTU() throws {
        let device = try VirtioNet(backend: FakeNetBackend(), mac: [0x52, 0x54, 0, 0xAA, 0xBB, 0xCC])
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
        defer { bytes.deallocate() }
        device.readConfig(offset: 0, into: bytes)
        #expect(Array(bytes) == [0x52, 0x54, 0, 0xAA, 0xBB, 0xCC, 1, 0, 1, 0, 0xDC, 0x05, 0, 0, 0, 0])
    }

    @Test func aResetForgetsHeldFrames() throws {
        var r = try rig()
        r.backend.incoming = [Self.frame(100)]
        r.device.processQueue(0)
        r.device.reset()
        r.device.processQueue(0)
        try postReceive(&r.rx, index: 0, address: 0x100000, length: 1536)
        r.device.processQueue(0)
        #expect(try r.rx.usedIdx() == 0)
    }
}

@Suite struct VirtioNetMultiqueueTests {
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x40_0000)])

    /// Two pairs: rx0, tx0, rx1, tx1 and the control queue at 4 (MQ) or 2 (no MQ).
    func rig(mq: Bool) throws -> (VirtioNet, [FakeNetBackend], [DriverQueue]) {
        let backends = [FakeNetBackend(), FakeNetBackend()]
        let device = try VirtioNet(backends: backends, mac: [0x52, 0x54, 0, 1, 2, 3])
        #expect(device.queueMaxSizes.count == 5)
        #expect(device.offeredFeatures & VirtioNetFeature.mq != 0)
        #expect(device.queueGroups == [[0, 1], [2, 3]])
        let driver = (0..<5).map { DriverQueue(memory: memory, size: 16, base: UInt64($0) * 0x10000) }
        var features = VirtioNetFeature.offered
        if mq { features |= VirtioNetFeature.mq }
        let queues = mq ? driver.map { try? $0.deviceQueue() } : [try driver[0].deviceQueue(), try driver[1].deviceQueue(), try driver[2].deviceQueue()]
        try device.activate(features: features, queues: queues, interrupt: RecordingInterrupt())
        return (device, backends, driver)
    }

    func sendControl(_ device: VirtioNet, _ q: inout DriverQueue, index: Int, _ command: [UInt8]) throws -> UInt8 {
        try memory.write(command, to: GuestAddress(0x300000))
        try q.setDescriptor(0, addr: 0x300000, len: UInt32(command.count), flags: 1, next: 1)
        try q.setDescriptor(1, addr: 0x301000, len: 1, flags: 2)
        try q.makeAvailable(0)
        device.processQueue(index)
        return try memory.load(UInt8.self, at: GuestAddress(0x301000))
    }

    @Test func pairOneReceivesOnlyOnceTheDriverEnablesIt() throws {
        var (device, backends, driver) = try rig(mq: true)
        #expect(backends.map(\.enabled) == [true, false])
        backends[1].incoming = [VirtioNetTests.frame(100)]
        try driver[2].setDescriptor(0, addr: 0x100000, len: 2048, flags: 2)
        try driver[2].makeAvailable(0)
        device.processQueue(2)
        #expect(try driver[2].usedIdx() == 0)
        // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 2, on the control queue at 4.
        #expect(try sendControl(device, &driver[4], index: 4, [4, 0, 2, 0]) == 0)
        #expect(backends.map(\.enabled) == [true, true])
        #expect(try driver[2].usedIdx() == 1)
        #expect(try sendControl(device, &driver[4], index: 4, [4, 0, 3, 0]) == 1)   // more pairs than there are
    }

    @Test func withoutMQTheControlQueueIsQueueTwo() throws {
        var (device, backends, driver) = try rig(mq: false)
        let offloads = [UInt8](littleEndian: VirtioNetFeature.guestCsum)
        #expect(try sendControl(device, &driver[2], index: 2, [5, 0] + offloads) == 0)
        #expect(backends[0].offloads == VirtioNetFeature.guestCsum)
    }
}

@Suite struct NetOptionTests {
    @Test func parsesTapMACAndSwitches() throws {
        let spec = try NetOption.parse("tap=apus0,mac=52:54:00:12:34:56,vhost=off,queues=1")
        #expect(spec.tap == "apus0" && spec.mac == [0x52, 0x54, 0, 0x12, 0x34, 0x56] && !spec.vhost && spec.queues == 1)
        #expect(try NetOption.parse("tap=t,mac=02-00-00-00-00-01").mac == [2, 0, 0, 0, 0, 1])
    }

    @Test(arguments: ["tap=a-name-of-sixteen", "tap=", "mac=52:54:00:12:34:56", "tap=x,mac=52:54:00:12:34",
                      "tap=x,mac=zz:54:00:12:34:56", "tap=x,mac=01:00:5e:00:00:01", "tap=x,queues=0", "tap=x,speed=10", "tap=a/b"])
    func refusesBadInput(_ argument: String) {
        #expect(throws: (any Error).self) { try NetOption.parse(argument) }
    }

    @Test(.enabled(if: getuid() == 0, "creating a tap needs root"))
    func aRealTapTakesTheVirtioHeaderAndOffloads() throws {
        let name = "apus-ut\(getpid() % 10000)"
        let tap = try TapDevice(name: name)
        #expect(tap.name == name)
        try tap.setHeaderSize(12)
        try tap.setOffloads(TapDevice.offloadChecksum | TapDevice.offloadTSO4)
        #expect(tap.interfaceMTU() == 1500)
        var buffer = [UInt8](repeating: 0, count: 64)
        // Nothing queued (the interface is down): EAGAIN, not a block.
        #expect(try buffer.withUnsafeMutableBytes { try tap.receive(into: $0) } == 0)
    }

    @Test(.enabled(if: getuid() == 0, "creating a tap needs root"))
    func multiQueueTapQueuesDetachAndAttachAgainAndRepeatsAreNoOps() throws {
        let name = "apus-mq\(getpid() % 10000)"
        let queues = try (0..<2).map { _ in try TapDevice(name: name, multiQueue: true) }
        try queues[1].setEnabled(true)     // attached already: nothing to do (the kernel says EINVAL)
        try queues[1].setEnabled(false)
        try queues[1].setEnabled(false)
        try queues[1].setEnabled(true)
        #expect(throws: SystemError.self) { try TapDevice(name: name) }   // not multi-queue: refused
    }
}
