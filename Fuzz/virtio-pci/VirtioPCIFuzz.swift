import FuzzKit
import GuestMemory
import PCI
import Virtio

/// A virtio-pci function (virtio-blk or virtio-console behind it) driven by a script:
/// configuration space, the MSI-X table and PBA, the modern structures, port-I/O notify and the
/// legacy header.
///
/// Input: flags (u8: bit 0 transitional, so BAR0 holds the legacy header; bit 1 notify in I/O
/// BAR4; bit 2 virtio-console, see `makeDevice`), then a script (see `decodeScript`) with
/// 2-byte offsets. Spaces 0–1 are configuration space: offsets below 4 KiB, 1, 2 or 4 bytes
/// inside one dword, as mechanism #1 and ECAM deliver them. Spaces 2–7 are BARs 0–5: offsets inside the BAR, any size for memory BARs and
/// 1, 2 or 4 bytes for I/O BARs, as the root's BAR windows deliver them. A notify runs the queue
/// at once.
///
/// The interrupt sink checks that only routed vectors of this function are signalled.
@_cdecl("LLVMFuzzerTestOneInput")
public func virtioPCIFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    typealias L = VirtioPCILayout
    var input = FuzzInput(data, count)
    let flags: UInt8 = input.next()
    let steps = decodeScript(&input, offsetBytes: 2)
    resetRAM()
    let pending = PendingNotifies()

    let root = PCIRoot(mmioWindow: .init(base: 0xE000_0000, size: 0x100_0000), ioWindow: .init(base: 0xC000, size: 0x4000))
    var allocator = PCIResourceAllocator(root: root)
    let device = makeDevice(console: flags & 4 != 0)
    let sink = CheckingSink(vectors: device.queueMaxSizes.count + 1)
    let options = VirtioPCI.Options(transitional: flags & 1 != 0, notifyByPortIO: flags & 2 != 0)
    let function: VirtioPCI
    do {
        function = try VirtioPCI(device: device, memory: fuzzRAM, options: options, allocator: &allocator, interrupts: sink,
                                 notify: { q in pending.add { device.processQueue(q) } },
                                 placeDoorbells: { doorbells in
                                     for d in doorbells { expect(d.queue >= 0 && d.queue < device.queueMaxSizes.count, "doorbell for queue \(d.queue)") }
                                 })
    } catch { fatalError("VirtioPCI: \(error)") }

    // BAR sizes in Apus's layout; BAR4, the I/O notify area, is 4 bytes a queue in a power of two.
    var notifySize: UInt64 = 4
    while notifySize < UInt64(device.queueMaxSizes.count) * UInt64(L.notifyMultiplier) { notifySize <<= 1 }
    let barSizes: [UInt64] = [L.legacySize, L.msixBARSize, L.modernSize, 0x100, notifySize, 0x100]
    let ioBARs: Set<Int> = [L.legacyBAR, L.pioNotifyBAR]
    for step in steps {
        defer { pending.drain() }
        switch step {
        case let .ram(address, value):
            try? fuzzRAM.store(value, at: GuestAddress(address))
        case var .access(a):
            if a.space % 8 < 2 {
                a.size = min(a.size, 4)
                var offset = Int(a.offset % 4096)
                offset -= max(offset % 4 + a.size - 4, 0)   // stay inside the dword
                _ = function.configRegisterName(offset: offset)
                a.withBuffer { buffer in
                    if a.isWrite { function.writeConfig(offset: offset, data: UnsafeRawBufferPointer(buffer)) }
                    else { function.readConfig(offset: offset, into: buffer) }
                }
            } else {
                let bar = a.space % 8 - 2
                if ioBARs.contains(bar) { a.size = min(a.size, 4) }
                let offset = a.offset % barSizes[bar]
                _ = function.barRegisterName(bar, offset: offset)
                a.withBuffer { buffer in
                    if a.isWrite { function.writeBAR(bar, offset: offset, data: UnsafeRawBufferPointer(buffer)) }
                    else { function.readBAR(bar, offset: offset, into: buffer) }
                }
            }
            _ = function.intxPending
        }
    }
    device.reset()
    return 0
}
