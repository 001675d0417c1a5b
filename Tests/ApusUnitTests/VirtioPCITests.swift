import DeviceBus
import Devices
import GuestMemory
import Locking
import PCI
import Testing
import Virtio

/// Records what a virtio-pci function asks of the machine.
final class RecordingSink: PCIInterruptSink, @unchecked Sendable {
    let log = Locked<[String]>([])
    func route(vector: Int, message: MSIXMessage?) { log.withLock { $0.append("route \(vector) \(message.map { String($0.data, radix: 16) } ?? "none")") } }
    func signal(vector: Int) { log.withLock { $0.append("signal \(vector)") } }
    func assertINTx() { log.withLock { $0.append("intx") } }
    func take() -> [String] { log.withLock { l in defer { l = [] }; return l } }
}

@Suite struct VirtioPCITests {
    typealias L = VirtioPCILayout
    let memory = try! GuestMemory(ranges: [(GuestAddress(0), 0x10_0000)])

    /// A function under test and what it told the machine.
    final class Rig: @unchecked Sendable {
        var transport: VirtioPCI?
        var t: VirtioPCI { transport! }
        let sink = RecordingSink()
        let notified = Locked<[Int]>([])
        let doorbells = Locked<[VirtioPCI.DoorbellAssignment]>([])
    }

    func makeRig(_ options: VirtioPCI.Options = .init(), device: (any VirtioDevice)? = nil) throws -> Rig {
        var allocator = PCIResourceAllocator(root: PCIRoot(mmioWindow: .init(base: 0xE100_0000, size: 0x100_0000), ioWindow: .init(base: 0xC000, size: 0x4000)))
        let r = Rig()
        r.transport = try VirtioPCI(device: device ?? VirtioBlock(name: "vda", backend: MemoryDisk(size: 4096), serial: "x"),
                            memory: memory, options: options, allocator: &allocator, interrupts: r.sink,
                            notify: { [unowned r] q in r.notified.withLock { $0.append(q) } },
                            placeDoorbells: { [unowned r] d in r.doorbells.withLock { $0 = d } })
        return r
    }

    func common(_ r: Rig, _ offset: UInt64, size: Int = 4) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { r.t.readBAR(L.modernBAR, offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
        return v
    }
    func setCommon(_ r: Rig, _ offset: UInt64, _ value: UInt64, size: Int = 4) {
        withUnsafeBytes(of: value) { r.t.writeBAR(L.modernBAR, offset: offset, data: UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
    }
    func bar(_ r: Rig, _ bar: Int, _ offset: UInt64, _ value: UInt64, size: Int) {
        withUnsafeBytes(of: value) { r.t.writeBAR(bar, offset: offset, data: UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
    }
    func readBar(_ r: Rig, _ bar: Int, _ offset: UInt64, size: Int) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { r.t.readBAR(bar, offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
        return v
    }

    /// The capability list as Linux's virtio_pci_find_capability walks it: cfg_type → (bar, offset, length).
    func virtioCapabilities(_ t: VirtioPCI) -> [UInt8: (UInt8, UInt32, UInt32)] {
        var out: [UInt8: (UInt8, UInt32, UInt32)] = [:]
        var at = Int(configRead(t, 0x34, size: 1))
        while at != 0 {
            if configRead(t, at, size: 1) == 0x09 {
                out[UInt8(configRead(t, at + 3, size: 1))] = (UInt8(configRead(t, at + 4, size: 1)), configRead(t, at + 8), configRead(t, at + 12))
            }
            at = Int(configRead(t, at + 1, size: 1))
        }
        return out
    }

    @Test func identityAndCapabilities() throws {
        let r = try makeRig()
        #expect(configRead(r.t, 0) == 0x1042_1AF4)             // modern block device
        #expect(configRead(r.t, 0x08, size: 1) == 1)           // revision 1: not transitional
        #expect(configRead(r.t, 0x2E, size: 2) == 2)
        let caps = virtioCapabilities(r.t)
        #expect(caps[1]! == (2, 0x0000, 0x40))
        #expect(caps[2]! == (2, 0x3000, 0x1000))
        #expect(caps[3]! == (2, 0x1000, 1))
        #expect(caps[4]! == (2, 0x2000, 0x1000))
        #expect(caps[5] != nil)
        let t = try makeRig(.init(transitional: true)).t
        #expect(configRead(t, 0) == 0x1001_1AF4 && configRead(t, 0x08, size: 1) == 0)
        #expect(configRead(t, 0x10) & 1 == 1)                   // BAR0: I/O
        #expect(throws: VirtioPCIError.self) { _ = try makeRig(.init(transitional: true), device: TestOnlyDevice()) }
    }

    @Test func theModernDriverSequenceActivatesTheDevice() throws {
        let r = try makeRig()
        setCommon(r, 0x14, 3, size: 1)
        setCommon(r, 0x00, 1)
        #expect(common(r, 0x04) & 1 == 1)                      // VERSION_1 in the high window
        setCommon(r, 0x08, 1); setCommon(r, 0x0C, 1)
        setCommon(r, 0x14, 11, size: 1)
        #expect(common(r, 0x14, size: 1) == 11)
        #expect(common(r, 0x12, size: 2) == 1)                 // num_queues
        setCommon(r, 0x16, 0, size: 2)
        #expect(common(r, 0x18, size: 2) == 256)
        setCommon(r, 0x18, 16, size: 2)
        setCommon(r, 0x20, 0x1000); setCommon(r, 0x24, 0)      // desc as two halves
        setCommon(r, 0x28, 0x3000, size: 8)                    // driver area in one qword
        setCommon(r, 0x30, 0x4000); setCommon(r, 0x34, 0)
        #expect(common(r, 0x28, size: 8) == 0x3000)
        setCommon(r, 0x1C, 1, size: 2)
        setCommon(r, 0x20, 0x8000)                             // enabled: layout frozen
        #expect(common(r, 0x20) == 0x1000)
        setCommon(r, 0x14, 15, size: 1)
        #expect(r.t.deviceStatus == 15)
        setCommon(r, 0x14, 0, size: 1)
        #expect(r.t.deviceStatus == 0 && common(r, 0x1C, size: 2) == 0)
    }

    /// The I/O thread finds a broken ring while a reset waits for its queue run: the status
    /// must read 0 after the reset all the same (through the modern and the legacy header).
    @Test(arguments: [false, true])
    func aResetLeavesNothingOfTheQueueRunItWaitedFor(legacy: Bool) throws {
        let device = BrokenRunDuringReset()
        let r = try makeRig(.init(transitional: true), device: device)
        setCommon(r, 0x14, 3, size: 1)
        setCommon(r, 0x08, 1); setCommon(r, 0x0C, 1)
        setCommon(r, 0x14, 11, size: 1)
        setCommon(r, 0x18, 8, size: 2)
        setCommon(r, 0x20, 0x1000); setCommon(r, 0x28, 0x2000); setCommon(r, 0x30, 0x3000)
        setCommon(r, 0x1C, 1, size: 2)
        setCommon(r, 0x14, 15, size: 1)
        #expect(r.t.deviceStatus == 15)
        if legacy {
            bar(r, L.legacyBAR, 0x12, 0, size: 1)              // the legacy header's STATUS
        } else {
            setCommon(r, 0x14, 0, size: 1)
        }
        #expect(device.resets == 1)
        #expect(r.t.deviceStatus == 0)
        #expect(readBar(r, L.modernBAR, L.isrOffset, size: 1) == 0)
    }

    @Test func vectorsOutOfRangeReadBackNoVector() throws {
        let r = try makeRig()                                  // 1 queue: vectors 0 and 1
        setCommon(r, 0x10, 1, size: 2)
        #expect(common(r, 0x10, size: 2) == 1)
        setCommon(r, 0x10, 2, size: 2)
        #expect(common(r, 0x10, size: 2) == 0xFFFF)
        setCommon(r, 0x1A, 0x7FFF, size: 2)
        #expect(common(r, 0x1A, size: 2) == 0xFFFF)
        setCommon(r, 0x16, 9, size: 2)                         // no such queue
        #expect(common(r, 0x1A, size: 2) == 0xFFFF && common(r, 0x18, size: 2) == 0)
        // Wrong-width accesses to common config are ignored.
        setCommon(r, 0x14, 0xFF, size: 4)
        #expect(r.t.deviceStatus == 0)
    }

    @Test func interruptsFollowMSIXOrINTx() throws {
        let r = try makeRig()
        r.t.signalUsedBuffers(queue: 0)                        // MSI-X off: INTx + ISR bit 0
        #expect(r.sink.take() == ["intx"])
        #expect(configRead(r.t, 0x06, size: 2) & 0x8 != 0)     // status: interrupt pending
        #expect(readBar(r, L.modernBAR, 0x1000, size: 1) == 1) // ISR, read to clear
        #expect(readBar(r, L.modernBAR, 0x1000, size: 1) == 0)
        #expect(!r.t.intxPending)
        // Enable MSI-X (message control is at capability + 2), give queue 0 vector 1.
        let msix = Int(configRead(r.t, 0x34, size: 1))
        #expect(configRead(r.t, msix, size: 1) == 0x11)
        configWrite(r.t, msix + 2, 0x8000, size: 2)
        #expect(configRead(r.t, msix + 2, size: 2) == 0x8001)
        _ = r.sink.take()
        setCommon(r, 0x1A, 1, size: 2)
        r.t.signalUsedBuffers(queue: 0)                        // masked: pending, nothing sent
        #expect(r.sink.take() == [])
        bar(r, L.msixBAR, 16, 0xFEE0_0000, size: 4)
        bar(r, L.msixBAR, 24, 0x51, size: 4)
        bar(r, L.msixBAR, 28, 0, size: 4)                      // unmask: route, then deliver
        #expect(r.sink.take() == ["route 1 51", "signal 1"])
        r.t.signalUsedBuffers(queue: 0)
        #expect(r.sink.take() == ["signal 1"])
        r.t.signalConfigChange()                               // config vector unset: nothing
        #expect(r.sink.take() == [])
        #expect(common(r, 0x15, size: 1) == 1)                 // but the generation moved
    }

    @Test func legacyHeaderOffsetsMoveWithMSIX() throws {
        let r = try makeRig(.init(transitional: true))
        let io = L.legacyBAR
        #expect(readBar(r, io, 0x00, size: 4) & (1 << 28) != 0) // indirect descriptors offered
        #expect(readBar(r, io, 0x0C, size: 2) == 256)           // QUEUE_NUM
        // Device config (capacity, 8 sectors) at 0x14 without MSI-X, at 0x18 with.
        #expect(readBar(r, io, 0x14, size: 4) == 8)
        let msix = Int(configRead(r.t, 0x34, size: 1))
        configWrite(r.t, msix + 2, 0x8000, size: 2)
        #expect(readBar(r, io, 0x18, size: 4) == 8)
        #expect(readBar(r, io, 0x14, size: 2) == 0xFFFF)        // CONFIG_VECTOR
        bar(r, io, 0x14, 0, size: 2)
        #expect(readBar(r, io, 0x14, size: 2) == 0)
        // The legacy driver: PFN places the rings; DRIVER_OK without FEATURES_OK activates.
        bar(r, io, 0x12, 3, size: 1)
        bar(r, io, 0x04, 1 << 28, size: 4)
        bar(r, io, 0x0E, 0, size: 2)
        bar(r, io, 0x08, 0x10, size: 4)                         // rings at 64 KiB
        #expect(readBar(r, io, 0x08, size: 4) == 0x10)
        bar(r, io, 0x12, 7, size: 1)
        #expect(r.t.deviceStatus == 7)
        bar(r, io, 0x10, 0, size: 2)                            // QUEUE_NOTIFY through an exit
        bar(r, io, 0x10, 5, size: 2)                            // no such queue: dropped
        #expect(r.notified.withLock { $0 } == [0])
        bar(r, io, 0x12, 0, size: 1)
        #expect(r.t.deviceStatus == 0 && readBar(r, io, 0x08, size: 4) == 0)
    }

    @Test func doorbellsFollowTheBARs() throws {
        let r = try makeRig(.init(transitional: true))
        #expect(r.doorbells.withLock { $0 }.isEmpty)            // decoding off
        configWrite(r.t, 0x04, 0x3, size: 2)
        let modern = UInt64(configRead(r.t, 0x18) & ~0xF)
        let legacy = UInt16(configRead(r.t, 0x10) & ~0x3)
        let expected: Set<VirtioPCI.DoorbellAssignment> = [
            VirtioPCI.DoorbellAssignment(queue: 0, doorbell: .fastMMIO(modern + 0x3000)),
            VirtioPCI.DoorbellAssignment(queue: 0, doorbell: .pioMatching(legacy + 0x10, value: 0))]
        #expect(Set(r.doorbells.withLock { $0 }) == expected)
        configWrite(r.t, 0x18, 0xE180_0000)                     // move BAR2
        let moved = VirtioPCI.DoorbellAssignment(queue: 0, doorbell: .fastMMIO(0xE180_3000))
        #expect(r.doorbells.withLock { $0 }.contains(moved))
        configWrite(r.t, 0x04, 0x0, size: 2)
        #expect(r.doorbells.withLock { $0 }.isEmpty)
        let p = try makeRig(.init(notifyByPortIO: true))
        configWrite(p.t, 0x04, 0x3, size: 2)
        let port = UInt16(configRead(p.t, 0x20) & ~0x3)
        #expect(p.doorbells.withLock { $0 } == [VirtioPCI.DoorbellAssignment(queue: 0, doorbell: .pio(port))])
        #expect(virtioCapabilities(p.t)[2]! == (4, 0, 4))
        bar(p, L.pioNotifyBAR, 0, 0, size: 2)
        bar(p, L.pioNotifyBAR, 8, 0, size: 2)                   // queue 2: none
        #expect(p.notified.withLock { $0 } == [0])
    }

    @Test func thePCIConfigAccessCapabilityReachesTheBARs() throws {
        let r = try makeRig()
        var cap = Int(configRead(r.t, 0x34, size: 1))
        while configRead(r.t, cap + 3, size: 1) != 5 || configRead(r.t, cap, size: 1) != 0x09 { cap = Int(configRead(r.t, cap + 1, size: 1)) }
        configWrite(r.t, cap + 4, 2, size: 1)                   // BAR2
        configWrite(r.t, cap + 8, 0x12)                         // num_queues
        configWrite(r.t, cap + 12, 2)
        #expect(configRead(r.t, cap + 16, size: 2) == 1)
        configWrite(r.t, cap + 8, 0x14)                         // device_status
        configWrite(r.t, cap + 12, 1)
        configWrite(r.t, cap + 16, 3, size: 1)
        #expect(r.t.deviceStatus == 3)
        configWrite(r.t, cap + 12, 3)                           // a length the spec does not allow
        #expect(configRead(r.t, cap + 16) == 0)
    }

    @Test func garbageEverywhereLeavesAWorkingDevice() throws {
        let r = try makeRig(.init(transitional: true))
        var seed: UInt64 = 0x1234_5678
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 11 }
        for _ in 0..<20000 {
            let size = [1, 2, 4, 8][Int(next() % 4)]
            switch next() % 3 {
            case 0: configWrite(r.t, Int(next() % 0x1000), UInt32(truncatingIfNeeded: next()), size: min(size, 4))
            case 1: bar(r, [0, 1, 2, 4][Int(next() % 4)], next() % 0x4000, next(), size: size)
            default: _ = readBar(r, [0, 1, 2, 4][Int(next() % 4)], next() % 0x4000, size: size)
            }
        }
        // A reset brings it back: the modern sequence works again.
        setCommon(r, 0x14, 0, size: 1)
        #expect(r.t.deviceStatus == 0)
        configWrite(r.t, 0, 0)
        #expect(configRead(r.t, 0) == 0x1001_1AF4)
        setCommon(r, 0x14, 3, size: 1)
        setCommon(r, 0x08, 1); setCommon(r, 0x0C, 1)
        setCommon(r, 0x14, 11, size: 1)
        #expect(r.t.deviceStatus == 11)
    }
}

/// A device type with no transitional ID (virtio-gpu, 16).
final class TestOnlyDevice: VirtioDevice, @unchecked Sendable {
    let deviceType: UInt32 = 16
    let name = "gpu"
    let offeredFeatures = VirtioFeature.version1
    let queueMaxSizes: [UInt16] = [8]
    func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) { readConfigBytes([], offset: offset, into: buffer) }
    func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws {}
    func processQueue(_ index: Int) {}
    func reset() {}
}
