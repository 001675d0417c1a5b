import DeviceBus
import Diagnostics
import GuestMemory
import Locking
import PCI
import Synchronization

/// The virtio-pci transport (virtio 1.2 §4.1): a PCI function whose capabilities point the
/// driver at the common configuration, notify, ISR and device-configuration structures in
/// BAR2, with MSI-X in BAR1 — and, for a transitional device, the legacy header in I/O BAR0 so
/// a legacy driver can use the same device. See `VirtioPCILayout` for the map.
///
/// Doorbells: each queue has its own notify address, and the machine puts an ioeventfd on it
/// (zero-length MMIO, KVM's fast path; or a port with `--notify pio`). Those addresses follow
/// the BARs, so whenever the guest moves a BAR or toggles decoding, `placeDoorbells` is told
/// the new set. A notify that exits anyway is handed to `notify`.
public final class VirtioPCI: PCIFunction, VirtioInterrupt {
    public struct Options: Sendable {
        /// Also serve legacy drivers through I/O BAR0 (transitional device ID).
        public var transitional = false
        /// Put the notify structure in I/O BAR4 instead of memory BAR2.
        public var notifyByPortIO = false
        public init(transitional: Bool = false, notifyByPortIO: Bool = false) {
            self.transitional = transitional
            self.notifyByPortIO = notifyByPortIO
        }
    }

    /// Where a queue's doorbell is, as the machine must register its ioeventfd.
    public enum Doorbell: Hashable, Sendable {
        /// A write of any size at this address (virtio 1.0's notify structure in memory).
        case fastMMIO(UInt64)
        /// A 16-bit write to this port (the notify structure in an I/O BAR).
        case pio(UInt16)
        /// A 16-bit write of the queue index to this port (the legacy QUEUE_NOTIFY register).
        case pioMatching(UInt16, value: UInt16)
    }
    public struct DoorbellAssignment: Hashable, Sendable {
        public var queue: Int
        public var doorbell: Doorbell
        public init(queue: Int, doorbell: Doorbell) { self.queue = queue; self.doorbell = doorbell }
    }

    struct State: Sendable {
        var config: PCIConfigSpace
        var virtio: VirtioState
        var msix: MSIXTable
        var vectors: VirtioPCIVectors
        /// The driver used the legacy header since the last reset.
        var legacyDriver = false
    }

    public let device: any VirtioDevice
    public var name: String { device.name }
    public let options: Options
    let memory: GuestMemory
    let state: Locked<State>
    let isr = Atomic<UInt8>(0)
    let sink: any PCIInterruptSink
    let notify: @Sendable (Int) -> Void
    private let placeDoorbells: @Sendable ([DoorbellAssignment]) -> Void
    private let doorbells = Locked<[DoorbellAssignment]>([])
    let log: DeviceLog
    let msixCapability: Int
    let pciCfgCapability: Int
    /// Each capability's offset and what it is, for `--trace exits`.
    private let capabilityNames: [(offset: Int, name: String)]
    private let notifyExits = Atomic<Int>(0)
    let accesses = VirtioPCIAccessCounts()
    let lifecycle = DeviceLifecycle()

    /// Accesses per region that exited to userspace, for `--stats`.
    public var accessCounts: [(VirtioPCIRegion, Int)] { accesses.snapshot }

    /// Notifications that exited to userspace instead of being caught by an ioeventfd.
    public var notificationsThroughExits: Int { notifyExits.load(ordering: .relaxed) }

    public init(device: any VirtioDevice, memory: GuestMemory, options: Options, allocator: inout PCIResourceAllocator,
                interrupts: any PCIInterruptSink, notify: @escaping @Sendable (Int) -> Void,
                placeDoorbells: @escaping @Sendable ([DoorbellAssignment]) -> Void,
                log: DeviceLog = .discard) throws {
        typealias L = VirtioPCILayout
        let queueCount = device.queueMaxSizes.count
        guard queueCount <= L.maxQueues else { throw VirtioPCIError.tooManyQueues(device.name, queueCount) }
        var options = options
        let legacyID = L.transitionalDeviceID(type: device.deviceType)
        if options.transitional && legacyID == nil { throw VirtioPCIError.noTransitionalID(device.name) }
        options.transitional = options.transitional && legacyID != nil
        self.device = device
        self.memory = memory
        self.options = options
        sink = interrupts
        self.notify = notify
        self.placeDoorbells = placeDoorbells
        self.log = log

        let identity = PCIConfigSpace.Identity(
            vendor: L.vendor, device: options.transitional ? legacyID! : UInt16(0x1040 + device.deviceType),
            revision: options.transitional ? 0 : 1, classCode: L.classCode(type: device.deviceType),
            subsystemVendor: L.vendor, subsystem: UInt16(truncatingIfNeeded: device.deviceType))
        var config = PCIConfigSpace(identity: identity, interruptPin: 1)
        if options.transitional {
            config.defineBAR(L.legacyBAR, .init(kind: .io, size: L.legacySize, initialAddress: try allocator.allocate(.io, size: L.legacySize)))
        }
        config.defineBAR(L.msixBAR, .init(kind: .memory32, size: L.msixBARSize, initialAddress: try allocator.allocate(.memory32, size: L.msixBARSize)))
        config.defineBAR(L.modernBAR, .init(kind: .memory32, size: L.modernSize, initialAddress: try allocator.allocate(.memory32, size: L.modernSize)))
        if options.notifyByPortIO {
            let size = L.pioNotifySize(queues: queueCount)
            config.defineBAR(L.pioNotifyBAR, .init(kind: .io, size: size, initialAddress: try allocator.allocate(.io, size: size)))
        }

        let msix = MSIXTable(vectors: queueCount + 1)
        // MSI-X: Message Control (written through `writeConfig`), table and PBA in BAR1.
        msixCapability = config.addCapability(id: MSIXTable.capabilityID, body:
            [UInt8(truncatingIfNeeded: msix.messageControl), UInt8(msix.messageControl >> 8)]
            + L.le32(UInt32(L.msixTableOffset) | UInt32(L.msixBAR)) + L.le32(UInt32(L.msixPBAOffset) | UInt32(L.msixBAR)))
        var names = [(msixCapability, "MSI-X")]
        names.append((config.addCapability(id: L.vendorCapabilityID, body: L.capabilityBody(
            .commonConfig, bar: L.modernBAR, offset: L.commonOffset, length: L.commonLength)), "virtio common cfg"))
        if options.notifyByPortIO {
            names.append((config.addCapability(id: L.vendorCapabilityID, body: L.capabilityBody(
                .notify, bar: L.pioNotifyBAR, offset: 0, length: UInt64(queueCount) * UInt64(L.notifyMultiplier), extra: L.le32(L.notifyMultiplier))), "virtio notify cfg"))
        } else {
            names.append((config.addCapability(id: L.vendorCapabilityID, body: L.capabilityBody(
                .notify, bar: L.modernBAR, offset: L.notifyOffset, length: L.notifyLength, extra: L.le32(L.notifyMultiplier))), "virtio notify cfg"))
        }
        names.append((config.addCapability(id: L.vendorCapabilityID, body: L.capabilityBody(
            .isr, bar: L.modernBAR, offset: L.isrOffset, length: L.isrLength)), "virtio ISR cfg"))
        names.append((config.addCapability(id: L.vendorCapabilityID, body: L.capabilityBody(
            .deviceConfig, bar: L.modernBAR, offset: L.deviceOffset, length: L.deviceLength)), "virtio device cfg"))
        // VIRTIO_PCI_CAP_PCI_CFG: bar, offset and length select a window that pci_cfg_data reads
        // and writes (for firmware that cannot map BARs).
        pciCfgCapability = config.addCapability(
            id: L.vendorCapabilityID, body: L.capabilityBody(.pciConfig, bar: 0, offset: 0, length: 0, extra: [0, 0, 0, 0]),
            writableBody: [0, 0, 0xFF, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 8) + [0, 0, 0, 0])
        names.append((pciCfgCapability, "virtio pci cfg"))
        capabilityNames = names

        state = Locked(State(config: config, virtio: VirtioState(offeredFeatures: device.offeredFeatures, queueMaxSizes: device.queueMaxSizes),
                            msix: msix, vectors: VirtioPCIVectors(queueCount: queueCount)))
    }

    // MARK: Configuration space

    public func readConfig(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        accesses.count(.configSpace)
        let cfg: (bar: Int, offset: UInt64, length: Int)? = state.withLock { s in
            s.config.read(offset: offset, into: data)
            let control = s.msix.messageControl
            let status = s.config.get16(PCIConfig.status) | (isr.load(ordering: .relaxed) != 0 ? PCIConfig.statusInterrupt : 0)
            for i in 0..<data.count {
                switch offset + i {
                case msixCapability + 2: data[i] = UInt8(truncatingIfNeeded: control)
                case msixCapability + 3: data[i] = UInt8(control >> 8)
                case PCIConfig.status: data[i] = UInt8(truncatingIfNeeded: status)
                default: break
                }
            }
            return touchesPCICfgData(offset: offset, count: data.count) ? pciCfgWindow(s.config) : nil
        }
        // pci_cfg_data: the selected BAR bytes, placed where the access overlaps the field.
        if let cfg {
            var window: UInt64 = 0
            withUnsafeMutableBytes(of: &window) { readBAR(cfg.bar, offset: cfg.offset, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<cfg.length])) }
            for i in 0..<data.count where (pciCfgCapability + 16..<pciCfgCapability + 20).contains(offset + i) {
                data[i] = UInt8(truncatingIfNeeded: window >> (8 * UInt64(offset + i - pciCfgCapability - 16)))
            }
        }
    }

    public func writeConfig(offset: Int, data: UnsafeRawBufferPointer) {
        accesses.count(.configSpace)
        let (effects, cfg): (MSIXTable.Effects?, (bar: Int, offset: UInt64, length: Int)?) = state.withLock { s in
            s.config.write(offset: offset, data: data)
            var effects: MSIXTable.Effects?
            let controlBytes = msixCapability + 2...msixCapability + 3
            if (offset..<offset + data.count).overlaps(controlBytes) {
                var control = s.msix.messageControl
                for i in 0..<data.count where controlBytes.contains(offset + i) {
                    let shift = UInt16(8 * (offset + i - controlBytes.lowerBound))
                    control = (control & ~(0xFF << shift)) | UInt16(data[i]) << shift
                }
                effects = s.msix.writeMessageControl(control)
            }
            return (effects, touchesPCICfgData(offset: offset, count: data.count) ? pciCfgWindow(s.config) : nil)
        }
        if let effects { apply(effects) }
        if let cfg, offset == pciCfgCapability + 16, data.count >= cfg.length {
            writeBAR(cfg.bar, offset: cfg.offset, data: UnsafeRawBufferPointer(rebasing: data[0..<cfg.length]))
        }
        updateDoorbells()
    }

    public var decodedBARs: [PCIBarMapping] { state.withLock { $0.config.decodedBARs } }

    private func touchesPCICfgData(offset: Int, count: Int) -> Bool {
        (offset..<offset + count).overlaps(pciCfgCapability + 16..<pciCfgCapability + 20)
    }

    /// The window pci_cfg selects, if it is one the spec allows (1, 2 or 4 bytes, aligned).
    private func pciCfgWindow(_ config: PCIConfigSpace) -> (bar: Int, offset: UInt64, length: Int)? {
        let bar = Int(config.get8(pciCfgCapability + 4))
        let offset = UInt64(config.get32(pciCfgCapability + 8))
        let length = Int(config.get32(pciCfgCapability + 12))
        guard bar < 6, [1, 2, 4].contains(length), offset % UInt64(length) == 0 else { return nil }
        return (bar, offset, length)
    }

    public func configRegisterName(offset: Int) -> String? {
        if let name = PCIConfig.registerName(offset) { return name }
        guard let cap = capabilityNames.last(where: { $0.offset <= offset }), offset - cap.offset < 20 else { return nil }
        let at = offset - cap.offset
        if cap.offset == msixCapability {
            return "MSI-X " + (at < 2 ? ["cap_id", "next"][at] : at < 4 ? "message control" : at < 8 ? "table offset/BIR" : "PBA offset/BIR")
        }
        let field = switch at {
        case 0: "cap_vndr"
        case 1: "cap_next"
        case 2: "cap_len"
        case 3: "cfg_type"
        case 4: "bar"
        case 5: "id"
        case 6, 7: "padding"
        case 8..<12: "offset"
        case 12..<16: "length"
        default: cap.offset == pciCfgCapability ? "pci_cfg_data" : "notify_off_multiplier"
        }
        return cap.name + " " + field
    }

    // MARK: Doorbells

    /// Recomputes where the queues' doorbells are and tells the machine if that changed.
    func updateDoorbells() {
        doorbells.withLock { current in
            let next = doorbellAssignments(decodedBARs)
            guard next != current else { return }
            current = next
            placeDoorbells(next)
        }
    }

    func doorbellAssignments(_ bars: [PCIBarMapping]) -> [DoorbellAssignment] {
        typealias L = VirtioPCILayout
        let queues = device.queueMaxSizes.indices
        var out: [DoorbellAssignment] = []
        for bar in bars {
            switch bar.index {
            case L.modernBAR where !options.notifyByPortIO:
                out += queues.map { DoorbellAssignment(queue: $0, doorbell: .fastMMIO(bar.address + L.notifyOffset + UInt64($0) * UInt64(L.notifyMultiplier))) }
            case L.pioNotifyBAR where options.notifyByPortIO:
                out += queues.map { DoorbellAssignment(queue: $0, doorbell: .pio(UInt16(truncatingIfNeeded: bar.address + UInt64($0) * UInt64(L.notifyMultiplier)))) }
            case L.legacyBAR where options.transitional:
                out += queues.map { DoorbellAssignment(queue: $0, doorbell: .pioMatching(UInt16(truncatingIfNeeded: bar.address + VirtioPCILegacy.queueNotify), value: UInt16($0))) }
            default: break
            }
        }
        return out
    }

    /// A notify that reached userspace (no ioeventfd caught it): hand it on all the same.
    func notifyThroughExit(queue: Int) {
        notifyExits.add(1, ordering: .relaxed)
        if queue >= 0 && queue < device.queueMaxSizes.count { notify(queue) }
    }

    /// Sets the Interrupt Line register: the IOAPIC pin INTx drives, for OSes that read it.
    public func setInterruptLine(_ line: UInt8) { state.withLock { $0.config.set8(PCIConfig.interruptLine, line) } }

    /// The current status byte (for tests and diagnostics).
    public var deviceStatus: UInt8 { state.withLock { $0.virtio.status } }
}

public enum VirtioPCIError: Error, Sendable, CustomStringConvertible {
    case tooManyQueues(String, Int)
    case noTransitionalID(String)
    public var description: String {
        switch self {
        case let .tooManyQueues(name, n): "\(name) has \(n) queues; virtio-pci in Apus serves at most \(VirtioPCILayout.maxQueues)"
        case let .noTransitionalID(name): "\(name) has no transitional PCI device ID, so it cannot be a transitional device"
        }
    }
}
