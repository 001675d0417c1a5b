import ByteOrder
import DeviceBus
import Synchronization

/// Configuration mechanism #1: the address register at 0xCF8 and the data window at 0xCFC–0xCFF
/// (PCI Local Bus 3.0 §3.2.2.3.2). Register this at port 0xCF8 with length 8.
///
/// The address register takes only 32-bit accesses (so Linux's probe — write 0x80000000, read
/// it back — sees a real one, and the byte writes older probes make at 0xCFB are ignored). The
/// data window takes any size at any offset that stays inside the dword.
public final class PCIConfigPorts: BusDevice {
    public let name = "pci-cf8"
    private let root: PCIRoot
    private let address = Atomic<UInt32>(0)

    public init(root: PCIRoot) { self.root = root }

    /// The function and register the address register selects, if its enable bit is set.
    private func target(dataOffset: UInt64, count: Int) -> (PCIAddress, Int)? {
        let a = address.load(ordering: .relaxed)
        guard a & 0x8000_0000 != 0, Int(dataOffset) + count <= 4 else { return nil }
        let pci = PCIAddress(bus: UInt8(truncatingIfNeeded: a >> 16), device: UInt8(truncatingIfNeeded: a >> 11) & 0x1F,
                             function: UInt8(truncatingIfNeeded: a >> 8) & 0x7)
        return (pci, Int(a & 0xFC) + Int(dataOffset))
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        if offset < 4 {
            data.storeLittleEndian(offset == 0 && data.count == 4 ? UInt64(address.load(ordering: .relaxed)) : 0xFFFF_FFFF)
            return
        }
        guard let (pci, register) = target(dataOffset: offset - 4, count: data.count) else {
            data.storeLittleEndian(UInt64.max)
            return
        }
        root.readConfig(pci, offset: register, into: data)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        if offset < 4 {
            // Reserved bits 30:24 and 1:0 read back as written on some chipsets; Linux only
            // checks its own value. Keep bits 1:0 zero, as the register is dword-aligned.
            if offset == 0 && data.count == 4 { address.store(UInt32(truncatingIfNeeded: data.littleEndianValue) & ~0x3, ordering: .relaxed) }
            return
        }
        guard let (pci, register) = target(dataOffset: offset - 4, count: data.count) else { return }
        root.writeConfig(pci, offset: register, data: data)
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? {
        if offset < 4 { return "CONFIG_ADDRESS" }
        guard let (pci, register) = target(dataOffset: offset - 4, count: 1) else { return "CONFIG_DATA (disabled)" }
        return "CONFIG_DATA \(pci) +0x\(String(register, radix: 16))" + (root.function(at: pci)?.configRegisterName(offset: register).map { " \($0)" } ?? "")
    }
}

/// The enhanced configuration access mechanism (ECAM, PCIe 4.0 §7.2.2): each function's 4 KiB
/// of configuration space mapped in MMIO at `bus << 20 | device << 15 | function << 12`.
public final class PCIECAM: BusDevice {
    public let name = "pci-ecam"
    private let root: PCIRoot
    /// Bytes per bus.
    public static let busSize: UInt64 = 1 << 20

    public init(root: PCIRoot) { self.root = root }

    private func split(_ offset: UInt64, _ count: Int) -> (PCIAddress, Int)? {
        let register = Int(offset & 0xFFF)
        // An access must stay inside one naturally aligned dword (the spec leaves others undefined).
        guard count <= 4, register % 4 + count <= 4 else { return nil }
        return (PCIAddress(bus: UInt8(truncatingIfNeeded: offset >> 20), device: UInt8(truncatingIfNeeded: offset >> 15) & 0x1F,
                           function: UInt8(truncatingIfNeeded: offset >> 12) & 0x7), register)
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard let (pci, register) = split(offset, data.count) else { data.storeLittleEndian(UInt64.max); return }
        root.readConfig(pci, offset: register, into: data)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard let (pci, register) = split(offset, data.count) else { return }
        root.writeConfig(pci, offset: register, data: data)
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? {
        guard let (pci, register) = split(offset, 1) else { return nil }
        return "\(pci) +0x\(String(register, radix: 16))" + (root.function(at: pci)?.configRegisterName(offset: register).map { " \($0)" } ?? "")
    }
}
