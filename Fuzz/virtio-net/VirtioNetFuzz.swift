import Devices
import FuzzKit
import Glibc
import GuestMemory
import LinuxSupport
import Virtio

/// virtio-net's receive, transmit and control queues over guest RAM the fuzzer writes, with a
/// backend that hands the device frames of fuzzed lengths and checks what it sends.
///
/// Input: flags (u8: bit 0 EVENT_IDX, bit 1 MRG_RXBUF, bit 2 VERSION_1 — without it and without
/// MRG_RXBUF the header is 10 bytes —, bit 3 the backend starts full, bit 4 two queue pairs with
/// VIRTIO_NET_F_MQ: rx1 at 0x2800, tx1 at 0x3000, the control queue then 4), the queue size as a power
/// of two (u8, 2^(n % 5)), a frame count (u8, at most 4 are used) and their lengths (u16 each),
/// an edit count (u8, at most 8) and the edits (u16 address, u16 value), then guest RAM from
/// address 0. Rings: receive at 0, transmit at 0x1000, control at 0x2000 (descriptor table,
/// available ring, used ring back to back in each); buffers wherever the descriptors point.
///
/// Checked: every frame sent lies in guest RAM, is longer than its header and at most a 64 KiB
/// frame with its headers; at most one reset request per queue.
@_cdecl("LLVMFuzzerTestOneInput")
public func virtioNetFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let flags: UInt8 = input.next()
    let size = UInt16(1) << (input.next(UInt8.self) % 5)
    let frames = (0..<Int(input.next(UInt8.self) % 5)).map { _ in Int(input.next(UInt16.self)) }
    let edits = (0..<Int(input.next(UInt8.self) % 9)).map { _ in (address: UInt64(input.next(UInt16.self)), value: input.next(UInt16.self)) }
    resetRAM(with: input.take())

    var features = VirtioNetFeature.offered & ~(VirtioFeature.ringEventIdx | VirtioNetFeature.mrgRxbuf | VirtioFeature.version1)
    if flags & 1 != 0 { features |= VirtioFeature.ringEventIdx }
    if flags & 2 != 0 { features |= VirtioNetFeature.mrgRxbuf }
    if flags & 4 != 0 { features |= VirtioFeature.version1 }
    let headerSize = VirtioNetHeader.size(features: features)
    let multiqueue = flags & 16 != 0
    if multiqueue { features |= VirtioNetFeature.mq }
    let backends = (0..<(multiqueue ? 2 : 1)).map { i in
        CheckingNetBackend(frames: i == 0 ? frames : Array(frames.reversed()), headerSize: headerSize, full: flags & 8 != 0)
    }
    guard let device = try? VirtioNet(backends: backends, mac: [0x52, 0x54, 0, 0, 0, 1]) else { fatalError("VirtioNet") }
    let queues = (multiqueue ? [0x0000, 0x1000, 0x2800, 0x3000, 0x2000] : [0x0000, 0x1000, 0x2000]).map { base -> SplitQueue? in
        let avail = UInt64(base) + 16 * UInt64(size)
        let used = (avail + 6 + 2 * UInt64(size) + 3) & ~3
        guard let q = try? SplitQueue(memory: fuzzRAM, size: size, maxSize: 256, descriptorTable: GuestAddress(UInt64(base)),
                                      availRing: GuestAddress(avail), usedRing: GuestAddress(used),
                                      eventIndex: flags & 1 != 0) else { fatalError("the fixed ring layout must fit in RAM") }
        return q
    }
    let interrupt = CountingInterrupt()
    do { try device.activate(features: features, queues: queues, interrupt: interrupt) } catch { fatalError("activate: \(error)") }

    for round in 0...edits.count {
        for q in queues.indices { device.processQueue(q) }
        for b in backends { b.full.toggle() }
        if round < edits.count { try? fuzzRAM.store(edits[round].value, at: GuestAddress(edits[round].address)) }
    }
    expect(interrupt.needsReset <= queues.count, "the device asked for a reset \(interrupt.needsReset) times")
    device.reset()
    return 0
}

/// Frames of the given lengths (a header, then a counting pattern) for the device to receive;
/// every frame it sends checked against guest RAM and the frame limits.
final class CheckingNetBackend: NetBackend, @unchecked Sendable {
    var frames: [Int]
    let headerSize: Int
    var full: Bool
    let fd: Int32 = -1
    var mtu: Int? { 1500 }

    init(frames: [Int], headerSize: Int, full: Bool) {
        self.frames = frames
        self.headerSize = headerSize
        self.full = full
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        guard !frames.isEmpty else { return 0 }
        let n = min(frames.removeFirst(), buffer.count)
        for i in 0..<n { buffer[i] = UInt8(truncatingIfNeeded: i) }
        return n
    }

    /// The device copied a refused frame aside: the next frame it sends is that copy, from its
    /// own memory rather than the guest's.
    private var owesCopy = false

    func send(_ pieces: UnsafeBufferPointer<iovec>) throws(SystemError) -> Bool {
        if full {
            owesCopy = true
            return false
        }
        var total = 0
        for p in pieces {
            expect(owesCopy || isInsideRAM(p.iov_base, length: p.iov_len), "a transmit buffer outside guest RAM")
            total += p.iov_len
        }
        owesCopy = false
        expect(total > headerSize, "a frame of \(total) bytes, header \(headerSize)")
        expect(total <= 65536 + 14 + 4 + 12, "a frame of \(total) bytes")
        return true
    }

    func setHeaderSize(_ bytes: Int) throws(SystemError) {}
    func setGuestOffloads(_ features: UInt64) throws(SystemError) {}
}
