import FuzzKit
import GuestMemory
import Virtio

/// The split virtqueue and its descriptor chains over guest RAM the fuzzer writes.
///
/// Input: flags (u8: bit 0 EVENT_IDX, bit 1 run the queue through `serveAvailable` instead of
/// popping by hand, bit 2 allow the spec's largest queue instead of 256), queue size (u16, any
/// value: the layout check is fuzzed too), the descriptor table, available ring and used ring
/// addresses (u16 each), an edit count (u8, at most 16 are used) and that many edits (u16
/// address, u16 value: the guest writing its RAM between two runs of the queue), then guest RAM
/// from address 0.
///
/// Checked besides "no crash, no hang": every buffer a chain yields lies in RAM, a chain is at
/// most the queue size long, readable buffers come before writable ones.
@_cdecl("LLVMFuzzerTestOneInput")
public func splitQueueFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let flags: UInt8 = input.next()
    let size: UInt16 = input.next()
    let desc = UInt64(input.next(UInt16.self)), avail = UInt64(input.next(UInt16.self)), used = UInt64(input.next(UInt16.self))
    // Work per input is about rounds × size²: keep it small enough for thousands of runs a second.
    let edits = (0..<Int(input.next(UInt8.self) % 17)).map { _ in (address: UInt64(input.next(UInt16.self)), value: input.next(UInt16.self)) }
    resetRAM(with: input.take())

    guard let queue = try? SplitQueue(memory: fuzzRAM, size: size, maxSize: flags & 4 != 0 ? SplitQueue.maximumSize : 256,
                                      descriptorTable: GuestAddress(desc), availRing: GuestAddress(avail),
                                      usedRing: GuestAddress(used), eventIndex: flags & 1 != 0) else { return 0 }
    let interrupt = CountingInterrupt()
    // A round per edit and a few more; each round serves what the driver has made available.
    for round in 0..<(edits.count + 4) {
        if flags & 2 != 0 {
            queue.serveAvailable(queue: 0, interrupt: interrupt, log: { _ in }) { chain in walk(&chain, size: size) }
        } else {
            serveByHand(queue, size: size)
        }
        if round < edits.count { try? fuzzRAM.store(edits[round].value, at: GuestAddress(edits[round].address)) }
    }
    expect(interrupt.needsReset <= 1, "the device asked for a reset \(interrupt.needsReset) times")
    return 0
}

/// Pops chains until none is left or the driver broke a rule, as a device with its own loop does.
private func serveByHand(_ queue: SplitQueue, size: UInt16) {
    guard !queue.isBroken else { return }
    do {
        while var chain = try queue.popAvailable() {
            let written = walk(&chain, size: size)
            if chain.error != nil { queue.markBroken(); return }
            queue.addUsed(head: chain.head, written: written)
        }
        _ = queue.needsInterrupt()
    } catch {
        queue.markBroken()
    }
}

/// Walks a chain, checking each buffer; returns the writable bytes (what a device would fill).
private func walk(_ chain: inout DescriptorChain, size: UInt16) -> UInt32 {
    var buffers = 0
    var sawWritable = false
    var writable: UInt32 = 0
    while let d = chain.next() {
        buffers += 1
        expect(buffers <= Int(size), "a chain of more than \(size) buffers")
        expect(fuzzRAM.contains(d.address, length: UInt64(d.length)), "buffer \(d.address) +\(d.length) outside RAM")
        expect(d.isWritable || !sawWritable, "a readable buffer after a writable one")
        sawWritable = sawWritable || d.isWritable
        if d.isWritable { writable &+= d.length }
    }
    return writable
}
