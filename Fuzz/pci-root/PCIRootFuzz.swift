import DeviceBus
import Devices
import FuzzKit
import GuestMemory
import PCI
import Virtio

/// The PCI root as the guest reaches it: configuration mechanism #1 (ports 0xCF8–0xCFF), ECAM,
/// and the MMIO and port-I/O windows where the guest's BARs are decoded. Behind it: the host
/// bridge, a transitional virtio-blk (legacy header in I/O BAR0) and a modern one with its
/// doorbells in I/O BAR4.
///
/// Input: a script (see `decodeScript`) with 4-byte offsets. Space 0 is mechanism #1 (offset
/// modulo 8, 1, 2 or 4 bytes), 1 ECAM (the offset's low 28 bits: bus, device, function,
/// register; any size), 2 the MMIO window, 3 the I/O window (1, 2 or 4 bytes). Offsets are
/// relative to the device's registration, and an access may run past its end, as on the buses.
@_cdecl("LLVMFuzzerTestOneInput")
public func pciRootFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let steps = decodeScript(&input, offsetBytes: 4)
    resetRAM()
    let pending = PendingNotifies()

    let root = PCIRoot(mmioWindow: .init(base: 0xE000_0000, size: 0x4_0000), ioWindow: .init(base: 0xC000, size: 0x1000))
    var allocator = PCIResourceAllocator(root: root)
    var devices: [VirtioBlock] = []
    do {
        for options in [VirtioPCI.Options(transitional: true), VirtioPCI.Options(notifyByPortIO: true)] {
            let device = VirtioBlock(name: "vd\(devices.count)", backend: MemoryDisk(sectors: 16, readOnly: false), serial: "fuzz")
            devices.append(device)
            _ = try root.plug(VirtioPCI(device: device, memory: fuzzRAM, options: options, allocator: &allocator,
                                        interrupts: CheckingSink(vectors: 2), notify: { q in pending.add { device.processQueue(q) } },
                                        placeDoorbells: { _ in }))
        }
    } catch { fatalError("plugging: \(error)") }
    let buses: [(device: any BusDevice, size: UInt64, maxAccess: Int)] = [
        (PCIConfigPorts(root: root), 8, 4),
        (PCIECAM(root: root), 256 * PCIECAM.busSize, 8),
        (PCIBarWindow(root: root, kind: .memory32), root.mmioWindow.size, 8),
        (PCIBarWindow(root: root, kind: .io), root.ioWindow.size, 4),
    ]

    for step in steps {
        defer { pending.drain() }
        switch step {
        case let .ram(address, value):
            try? fuzzRAM.store(value, at: GuestAddress(address))
        case var .access(a):
            let bus = buses[a.space % buses.count]
            a.size = min(a.size, bus.maxAccess)
            let offset = a.offset % bus.size
            _ = bus.device.registerName(offset: offset, isWrite: a.isWrite)
            a.withBuffer { buffer in
                if a.isWrite { bus.device.write(offset: offset, data: UnsafeRawBufferPointer(buffer)) }
                else { bus.device.read(offset: offset, data: buffer) }
            }
        }
    }
    _ = root.placedBARs
    for d in devices { d.reset() }
    return 0
}
