import FuzzKit
import GuestMemory
import Virtio

/// The virtio-mmio register file, with a virtio-blk or virtio-console device behind it, driven
/// by a script.
///
/// Input: flags (u8: bit 0 the legacy interface, version 1; bit 1 virtio-console, see
/// `makeDevice`), then a script (see `decodeScript`) with 2-byte offsets taken modulo the
/// 0x200-byte window, any size 1–8 as KVM delivers MMIO exits; RAM stores let the script build rings and requests. A QueueNotify
/// write runs the queue at once, as the I/O thread would.
@_cdecl("LLVMFuzzerTestOneInput")
public func virtioMMIOFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let flags: UInt8 = input.next()
    let steps = decodeScript(&input, offsetBytes: 2)
    resetRAM()
    let pending = PendingNotifies()

    let device = makeDevice(console: flags & 2 != 0)
    let transport = VirtioMMIO(device: device, memory: fuzzRAM, version: flags & 1 != 0 ? 1 : 2, raiseInterrupt: {},
                               notify: { q in pending.add { device.processQueue(q) } })
    for step in steps {
        defer { pending.drain() }
        switch step {
        case let .ram(address, value):
            try? fuzzRAM.store(value, at: GuestAddress(address))
        case let .access(a):
            let offset = a.offset % VirtioMMIO.windowSize
            _ = transport.registerName(offset: offset, isWrite: a.isWrite)
            a.withBuffer { buffer in
                if a.isWrite { transport.write(offset: offset, data: UnsafeRawBufferPointer(buffer)) }
                else { transport.read(offset: offset, data: buffer) }
            }
        }
    }
    device.reset()
    return 0
}
