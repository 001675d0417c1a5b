import Devices
import FuzzKit
import GuestMemory
import Virtio

/// virtio-blk requests: the device served over a queue whose every byte the fuzzer writes.
///
/// Input: flags (u8: bit 0 read-only disk, bit 1 EVENT_IDX, bit 2 FLUSH, bit 3 CONFIG_WCE, bit 4
/// the driver writes 0 to `writeback`), the queue size as a power of two (u8, 2^(n % 9)), an edit
/// count (u8, at most 8 are used) and the edits (u16 address, u16 value), then guest RAM from
/// address 0. The rings sit back to back from address 0: descriptor table, available ring,
/// used ring (4-aligned); requests and their buffers are wherever the descriptors point.
///
/// The disk (16 sectors) checks every transfer: inside the disk, buffers inside guest RAM, no
/// write to a read-only disk.
@_cdecl("LLVMFuzzerTestOneInput")
public func virtioBlockFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let flags: UInt8 = input.next()
    let size = UInt16(1) << (input.next(UInt8.self) % 9)
    let edits = (0..<Int(input.next(UInt8.self) % 9)).map { _ in (address: UInt64(input.next(UInt16.self)), value: input.next(UInt16.self)) }
    resetRAM(with: input.take())

    let device = VirtioBlock(name: "vda", backend: MemoryDisk(sectors: 16, readOnly: flags & 1 != 0), serial: "fuzz")
    var features = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc
    if flags & 2 != 0 { features |= VirtioFeature.ringEventIdx }
    if flags & 4 != 0 { features |= 1 << 9 }    // FLUSH
    if flags & 8 != 0 { features |= 1 << 11 }   // CONFIG_WCE
    let avail = 16 * UInt64(size)
    let used = (avail + 6 + 2 * UInt64(size) + 3) & ~3
    guard let queue = try? SplitQueue(memory: fuzzRAM, size: size, maxSize: 256, descriptorTable: GuestAddress(0),
                                      availRing: GuestAddress(avail), usedRing: GuestAddress(used),
                                      eventIndex: flags & 2 != 0) else {
        fatalError("the fixed ring layout must fit in RAM")
    }
    let interrupt = CountingInterrupt()
    do { try device.activate(features: features, queues: [queue], interrupt: interrupt) } catch { fatalError("activate: \(error)") }
    if flags & 16 != 0 { withUnsafeBytes(of: UInt8(0)) { device.writeConfig(offset: 32, bytes: $0) } }

    for round in 0...edits.count {
        device.processQueue(0)
        if round < edits.count { try? fuzzRAM.store(edits[round].value, at: GuestAddress(edits[round].address)) }
    }
    expect(interrupt.needsReset <= 1, "the device asked for a reset \(interrupt.needsReset) times")
    device.reset()
    return 0
}
