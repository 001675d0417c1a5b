import DeviceBus
import Locking

/// Bus 0 of the board: 32 device slots, the host bridge in slot 0, and the decoding of every
/// BAR the guest has placed.
///
/// The guest may move a BAR at any time, so BAR decoding cannot live in the vCPUs' immutable
/// buses. Instead the root owns whole windows (one in MMIO, one in port I/O), registered once
/// on those buses, and keeps its own table of placed BARs, rebuilt after every config write.
/// Accesses inside a window look the table up under a lock; they are rare (virtio's hot path,
/// the notify doorbell, is an ioeventfd and never gets here).
public final class PCIRoot: Sendable {
    /// An address range the root decodes, and where it sits on the board.
    public struct Window: Sendable, Equatable {
        public var base: UInt64
        public var size: UInt64
        public init(base: UInt64, size: UInt64) { self.base = base; self.size = size }
        public func contains(_ address: UInt64, length: UInt64) -> Bool {
            address >= base && length <= size && address - base <= size - length
        }
    }

    private struct Placement {
        let slot: Int
        let mapping: PCIBarMapping
        let function: any PCIFunction
    }

    public static let slotCount = 32
    private let slots: Locked<[(any PCIFunction)?]>
    private let placements = Locked<[Placement]>([])
    public let mmioWindow: Window
    public let ioWindow: Window
    /// Called (outside the root's locks) after a function's decoded BARs changed.
    private let log: @Sendable (String) -> Void

    public init(mmioWindow: Window, ioWindow: Window, log: @escaping @Sendable (String) -> Void = { _ in }) {
        var slots = [(any PCIFunction)?](repeating: nil, count: Self.slotCount)
        slots[0] = PCIHostBridge()
        self.slots = Locked(slots)
        self.mmioWindow = mmioWindow
        self.ioWindow = ioWindow
        self.log = log
    }

    /// Plugs `function` into the first free slot and returns its address.
    public func plug(_ function: any PCIFunction) throws(PCIError) -> PCIAddress {
        let slot: Int? = slots.withLock { s in
            guard let free = s.firstIndex(where: { $0 == nil }) else { return nil }
            s[free] = function
            return free
        }
        guard let slot else { throw .noFreeSlot(function.name) }
        refreshPlacements(slot: slot)
        return PCIAddress(device: UInt8(slot))
    }

    /// The function in `slot`, if any.
    public func function(at address: PCIAddress) -> (any PCIFunction)? {
        guard address.bus == 0, address.function == 0 else { return nil }
        return slots.withLock { $0[Int(address.device)] }
    }

    /// All plugged functions with their addresses (the host bridge first).
    public var functions: [(PCIAddress, any PCIFunction)] {
        slots.withLock { s in s.enumerated().compactMap { i, f in f.map { (PCIAddress(device: UInt8(i)), $0) } } }
    }

    // MARK: Configuration cycles (from mechanism #1 or ECAM)

    /// A configuration read; an empty slot, function or bus reads all ones (no device).
    public func readConfig(_ address: PCIAddress, offset: Int, into data: UnsafeMutableRawBufferPointer) {
        guard let f = function(at: address) else {
            for i in 0..<data.count { data[i] = 0xFF }
            return
        }
        f.readConfig(offset: offset, into: data)
    }

    /// A configuration write; afterwards the function's BAR placements are re-read.
    public func writeConfig(_ address: PCIAddress, offset: Int, data: UnsafeRawBufferPointer) {
        guard let f = function(at: address) else { return }
        f.writeConfig(offset: offset, data: data)
        refreshPlacements(slot: Int(address.device))
    }

    private func refreshPlacements(slot: Int) {
        guard let f = slots.withLock({ $0[slot] }) else { return }
        let mappings = f.decodedBARs
        placements.withLock { p in
            p.removeAll { $0.slot == slot }
            p += mappings.map { Placement(slot: slot, mapping: $0, function: f) }
        }
    }

    /// The BAR decoding `address` in `kind` space, if any (the first placed wins when a guest
    /// makes two overlap).
    func decode(_ address: UInt64, kind: PCIBarDefinition.Kind) -> (any PCIFunction, Int, UInt64)? {
        placements.withLock { list in
            for p in list where p.mapping.kind == kind && address >= p.mapping.address && address - p.mapping.address < p.mapping.size {
                return (p.function, p.mapping.index, address - p.mapping.address)
            }
            return nil
        }
    }

    /// Every placed BAR, for `--trace` and tests.
    public var placedBARs: [(PCIAddress, PCIBarMapping)] {
        placements.withLock { $0.map { (PCIAddress(device: UInt8($0.slot)), $0.mapping) } }
    }
}

/// Why a PCI operation was refused.
public enum PCIError: Error, Equatable, Sendable, CustomStringConvertible {
    case noFreeSlot(String)
    public var description: String {
        switch self {
        case let .noFreeSlot(name): "no free PCI slot for \(name): bus 0 has \(PCIRoot.slotCount - 1) device slots"
        }
    }
}

/// A window of BAR space on one of the machine's buses: accesses inside it go to whichever BAR
/// the guest placed there; the rest read as all ones (nothing decodes them).
public final class PCIBarWindow: BusDevice {
    public let name: String
    private let root: PCIRoot
    private let kind: PCIBarDefinition.Kind
    private let base: UInt64

    public init(root: PCIRoot, kind: PCIBarDefinition.Kind) {
        self.root = root
        self.kind = kind
        base = kind == .io ? root.ioWindow.base : root.mmioWindow.base
        name = kind == .io ? "pci-io" : "pci-mmio"
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard let (f, bar, at) = root.decode(base + offset, kind: kind) else {
            for i in 0..<data.count { data[i] = 0xFF }
            return
        }
        f.readBAR(bar, offset: at, into: data)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard let (f, bar, at) = root.decode(base + offset, kind: kind) else { return }
        f.writeBAR(bar, offset: at, data: data)
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? {
        guard let (f, bar, at) = root.decode(base + offset, kind: kind) else { return nil }
        return "\(f.name) BAR\(bar)+0x\(String(at, radix: 16))" + (f.barRegisterName(bar, offset: at).map { " \($0)" } ?? "")
    }
}
