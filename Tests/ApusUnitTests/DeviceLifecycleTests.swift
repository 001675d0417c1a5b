import Diagnostics
import GuestMemory
import Locking
import Synchronization
import Testing
import Virtio

/// A device that keeps the interrupt it was activated with, to play an I/O thread that finishes
/// late.
final class KeepingDevice: VirtioDevice, @unchecked Sendable {
    let deviceType: UInt32 = 4
    let name = "keeper"
    let offeredFeatures = VirtioFeature.version1
    let queueMaxSizes: [UInt16] = [8]
    let kept = Locked<(any VirtioInterrupt)?>(nil)
    func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) { readConfigBytes([], offset: offset, into: buffer) }
    func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws { kept.withLock { $0 = interrupt } }
    func processQueue(_ index: Int) {}
    func reset() {}
}

@Suite struct DeviceLifecycleTests {
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x10_0000)])

    func write32(_ t: VirtioMMIO, _ r: VirtioMMIO.Register, _ value: UInt32) {
        withUnsafeBytes(of: value) { t.write(offset: r.rawValue, data: $0) }
    }

    /// Finding 10 of the hostile-guest review: after a reset, nothing from the old activation
    /// may reach the device's fresh state (a late "needs reset" would poison it).
    @Test func aLateSignalFromBeforeAResetIsDropped() throws {
        let device = KeepingDevice()
        let raised = Atomic<Int>(0)
        let t = VirtioMMIO(device: device, memory: memory, raiseInterrupt: { raised.add(1, ordering: .relaxed) }, notify: { _ in })
        write32(t, .status, 3)
        write32(t, .driverFeaturesSel, 1)
        write32(t, .driverFeatures, 1)
        write32(t, .status, 11)
        write32(t, .queueNum, 8)
        write32(t, .queueDescLow, 0x1000)
        write32(t, .queueDriverLow, 0x2000)
        write32(t, .queueDeviceLow, 0x3000)
        write32(t, .queueReady, 1)
        write32(t, .status, 15)
        let old = try #require(device.kept.withLock { $0 })
        old.signalUsedBuffers(queue: 0)
        #expect(raised.load(ordering: .relaxed) == 1)          // live: delivered
        write32(t, .status, 0)                                  // the driver resets
        write32(t, .status, 3)
        old.deviceNeedsReset()
        old.signalUsedBuffers(queue: 0)
        #expect(t.deviceStatus == 3, "the fresh state must not say DEVICE_NEEDS_RESET")
        #expect(raised.load(ordering: .relaxed) == 1, "no interrupt from the old activation")
    }

    @Test func activationAfterAResetStartsNothing() throws {
        let device = KeepingDevice()
        let t = VirtioMMIO(device: device, memory: memory, raiseInterrupt: {}, notify: { _ in })
        // DRIVER_OK without FEATURES_OK is ignored, so the device never starts.
        write32(t, .status, 3 | 4)
        #expect(device.kept.withLock { $0 } == nil)
    }
}

@Suite struct GuestEventLogTests {
    @Test func oneLinePerCauseAndDeviceThenCounts() {
        let lines = Locked<[String]>([])
        let log = GuestEventLog(sink: { line in lines.withLock { $0.append(line) } })
        let blk = log.device("virtio-blk0"), rng = log.device("virtio-rng")
        for i in 0..<10_000 { blk.report("bad request", "request \(i) has no header") }
        blk.report("I/O error", "EIO")
        rng.report("bad request", "chain too short")
        #expect(lines.withLock { $0 } == ["virtio-blk0: request 0 has no header", "virtio-blk0: EIO", "virtio-rng: chain too short"])
        #expect(log.count("virtio-blk0", cause: "bad request") == 10_000)
        #expect(log.repeated.map(\.count) == [10_000])
    }
}
