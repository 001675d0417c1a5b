import ByteOrder
import DeviceBus
import Diagnostics
import GuestMemory
import Locking
import Synchronization

/// The virtio-mmio transport (virtio 1.2 §4.2): one 0x200-byte register window per device, plus
/// the device configuration space from 0x100. Version 2 by default; version 1 is the legacy
/// interface (§4.2.4): queues placed by a guest page number (GuestPageSize, QueuePFN,
/// QueueAlign) instead of three addresses and QueueReady, and no FEATURES_OK.
///
/// All registers are 32-bit and must be accessed as such (config space excepted); other
/// accesses are ignored and read as 0, as the spec allows. Queue notifications normally never
/// reach `write` — the machine registers an ioeventfd with datamatch on QueueNotify per queue —
/// but a write that does arrive (no ioeventfd) is handed to `notify` all the same.
public final class VirtioMMIO: BusDevice {
    /// The registers, by offset. Each case's name is the spec's register name (virtio 1.2
    /// §4.2.2, §4.2.4 for version 1), which `--trace exits` prints.
    public enum Register: UInt64, CaseIterable, Sendable {
        case magicValue = 0x000, version = 0x004, deviceID = 0x008, vendorID = 0x00C
        case deviceFeatures = 0x010, deviceFeaturesSel = 0x014
        case driverFeatures = 0x020, driverFeaturesSel = 0x024
        case guestPageSize = 0x028     // version 1 only
        case queueSel = 0x030, queueNumMax = 0x034, queueNum = 0x038
        case queueAlign = 0x03C, queuePFN = 0x040   // version 1 only
        case queueReady = 0x044, queueNotify = 0x050
        case interruptStatus = 0x060, interruptACK = 0x064, status = 0x070
        case queueDescLow = 0x080, queueDescHigh = 0x084
        case queueDriverLow = 0x090, queueDriverHigh = 0x094
        case queueDeviceLow = 0x0A0, queueDeviceHigh = 0x0A4
        case configGeneration = 0x0FC

        /// The spec's name: the case name with a capital first letter ("QueueNotify").
        public var name: String {
            let s = String(describing: self)
            return s.prefix(1).uppercased() + s.dropFirst()
        }
    }
    /// Device configuration space starts here.
    public static let config: UInt64 = 0x100
    /// The size of one device's window.
    public static let windowSize: UInt64 = 0x200

    static let magic: UInt32 = 0x7472_6976   // "virt"
    static let vendor: UInt32 = 0x5355_5041  // "APUS"
    public static let interruptUsedBuffer: UInt32 = 1
    public static let interruptConfigChange: UInt32 = 2

    public var name: String { device.name }
    public let device: any VirtioDevice
    /// 2 (virtio 1.0 and later) or 1 (legacy).
    public let version: UInt32
    private let memory: GuestMemory
    private let state: Locked<VirtioState>
    private let interrupt: Interrupt
    private let notify: @Sendable (Int) -> Void
    private let log: DeviceLog
    private let notifyExits = Atomic<Int>(0)
    private let lifecycle = DeviceLifecycle()
    /// Version 1: the guest's page size and used-ring alignment, for QueuePFN.
    private let guestPageSizeValue = Atomic<UInt32>(4096)
    private let queueAlignValue = Atomic<UInt32>(4096)
    private var legacyPageSize: UInt64 { UInt64(guestPageSizeValue.load(ordering: .relaxed)) }

    /// QueueNotify writes that exited to userspace instead of being caught by an ioeventfd.
    public var notificationsThroughExits: Int { notifyExits.load(ordering: .relaxed) }

    /// - Parameters:
    ///   - raiseInterrupt: asserts the device's interrupt line (an irqfd signal).
    ///   - notify: hands a queue notification to the device's I/O thread.
    public init(device: any VirtioDevice, memory: GuestMemory, version: UInt32 = 2, raiseInterrupt: @escaping @Sendable () -> Void,
                notify: @escaping @Sendable (Int) -> Void, log: DeviceLog = .discard) {
        precondition(version == 1 || version == 2)
        self.device = device
        self.version = version
        self.memory = memory
        state = Locked(VirtioState(offeredFeatures: device.offeredFeatures, queueMaxSizes: device.queueMaxSizes))
        interrupt = Interrupt(raise: raiseInterrupt)
        self.notify = notify
        self.log = log
        interrupt.markNeedsReset = { [weak self] in self?.state.withLock { $0.setNeedsReset() } }
        interrupt.bumpGeneration = { [weak self] in self?.state.withLock { $0.bumpConfigGeneration() } }
        interrupt.requeue = notify
    }

    /// InterruptStatus bits and the line behind them, shared with the device's I/O thread.
    final class Interrupt: VirtioInterrupt, @unchecked Sendable {
        let status = Atomic<UInt32>(0)
        let raise: @Sendable () -> Void
        // Set once in VirtioMMIO.init, before the object is shared.
        var markNeedsReset: @Sendable () -> Void = {}
        var bumpGeneration: @Sendable () -> Void = {}
        init(raise: @escaping @Sendable () -> Void) { self.raise = raise }
        func deviceNeedsReset() {
            markNeedsReset()
            signalConfigChange()
        }
        func signalUsedBuffers(queue: Int) {
            status.bitwiseOr(VirtioMMIO.interruptUsedBuffer, ordering: .releasing)
            raise()
        }
        // Set once in VirtioMMIO.init, before the object is shared.
        var requeue: @Sendable (Int) -> Void = { _ in }
        func serveAgain(queue: Int) { requeue(queue) }
        func signalConfigChange() {
            bumpGeneration()
            status.bitwiseOr(VirtioMMIO.interruptConfigChange, ordering: .releasing)
            raise()
        }
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        if offset >= Self.config {
            device.readConfig(offset: Int(offset - Self.config), into: data)
            return
        }
        guard data.count == 4, let register = Register(rawValue: offset) else { data.storeLittleEndian(0); return }
        let value: UInt32 = state.withLock { s in
            switch register {
            case .magicValue: return Self.magic
            case .version: return version
            case .deviceID: return device.deviceType
            case .vendorID: return Self.vendor
            // A legacy (version 1) device does not offer VERSION_1: a driver that saw it would
            // negotiate the modern interface over the legacy registers.
            case .deviceFeatures: return version == 1 && s.deviceFeaturesSelect == 1 ? s.deviceFeaturesWindow & ~1 : s.deviceFeaturesWindow
            case .queueNumMax: return s.selectedQueue.map { UInt32(s.queueMaxSizes[$0]) } ?? 0
            case .queueReady where version == 2: return s.selectedQueue.map { s.queues[$0].ready ? 1 : 0 } ?? 0
            case .queuePFN where version == 1: return s.legacyQueuePage(pageSize: legacyPageSize)
            case .interruptStatus: return interrupt.status.load(ordering: .acquiring)
            case .status: return UInt32(s.status)
            case .configGeneration: return s.configGeneration
            default: return 0
            }
        }
        data.storeLittleEndian(UInt64(value))
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        if offset >= Self.config {
            device.writeConfig(offset: Int(offset - Self.config), bytes: data)
            return
        }
        guard data.count == 4, let register = Register(rawValue: offset) else { return }
        let value = UInt32(truncatingIfNeeded: data.littleEndianValue)
        if register == .queueNotify {
            notifyExits.add(1, ordering: .relaxed)
            if Int(value) < device.queueMaxSizes.count { notify(Int(value)) }
            return
        }
        if register == .interruptACK {
            interrupt.status.bitwiseAnd(~value, ordering: .releasing)
            return
        }
        let action: VirtioState.StatusAction = state.withLock { s in
            // Queue layout may change only while the queue is not ready (§4.2.2.2).
            func updateQueue(_ body: (inout VirtioState.QueueSetup) -> Void) {
                guard let q = s.selectedQueue, !s.queues[q].ready else { return }
                body(&s.queues[q])
            }
            switch register {
            case .deviceFeaturesSel: s.deviceFeaturesSelect = value
            case .driverFeatures: s.writeDriverFeatures(value)
            case .driverFeaturesSel: s.driverFeaturesSelect = value
            case .queueSel: s.queueSelect = value
            case .queueNum: updateQueue { $0.size = UInt16(truncatingIfNeeded: value) }
            case .queueReady where version == 2: if let q = s.selectedQueue { s.queues[q].ready = value & 1 != 0 }
            case .guestPageSize where version == 1:
                // A power of two the driver's pages really have; anything else keeps 4 KiB.
                if value.nonzeroBitCount == 1 && value >= 1024 && value <= 1 << 16 { guestPageSizeValue.store(value, ordering: .relaxed) }
            case .queueAlign where version == 1:
                if value.nonzeroBitCount == 1 && value <= 1 << 16 { queueAlignValue.store(value, ordering: .relaxed) }
            case .queuePFN where version == 1:
                if s.status & DeviceStatus.driverOK == 0 {
                    s.setLegacyQueue(pageNumber: value, pageSize: legacyPageSize, align: UInt64(queueAlignValue.load(ordering: .relaxed)))
                }
            case .queueDescLow where version == 2: updateQueue { $0.descriptorTable = ($0.descriptorTable & ~0xFFFF_FFFF) | UInt64(value) }
            case .queueDescHigh where version == 2: updateQueue { $0.descriptorTable = ($0.descriptorTable & 0xFFFF_FFFF) | UInt64(value) << 32 }
            case .queueDriverLow where version == 2: updateQueue { $0.driverArea = ($0.driverArea & ~0xFFFF_FFFF) | UInt64(value) }
            case .queueDriverHigh where version == 2: updateQueue { $0.driverArea = ($0.driverArea & 0xFFFF_FFFF) | UInt64(value) << 32 }
            case .queueDeviceLow where version == 2: updateQueue { $0.deviceArea = ($0.deviceArea & ~0xFFFF_FFFF) | UInt64(value) }
            case .queueDeviceHigh where version == 2: updateQueue { $0.deviceArea = ($0.deviceArea & 0xFFFF_FFFF) | UInt64(value) << 32 }
            case .status:
                let action = s.writeStatus(UInt8(truncatingIfNeeded: value), legacy: version == 1)
                if action == .reset { lifecycle.advance() }
                return action
            default: break
            }
            return .none
        }
        switch action {
        case .none: break
        case .reset:
            lifecycle.reset(device) {
                interrupt.status.store(0, ordering: .releasing)
                guestPageSizeValue.store(4096, ordering: .relaxed)
                queueAlignValue.store(4096, ordering: .relaxed)
            }
        case .activate:
            activate()
        }
    }

    /// DRIVER_OK: validate every ready queue and hand them to the device, or mark the device
    /// DEVICE_NEEDS_RESET (with a config-change interrupt) if the driver's setup is broken.
    private func activate() {
        let started = lifecycle.activate(device, interrupt: interrupt, log: log,
                                         needsReset: { [weak self] epoch in self?.needsReset(epoch: epoch) }) {
            state.withLock { s in
                // A reset since the DRIVER_OK write: nothing to start.
                guard s.status & DeviceStatus.driverOK != 0 else { return nil }
                return (Result { () throws(QueueError) in (try s.makeQueues(memory: memory), s.driverFeatures) }, lifecycle.current)
            }
        }
        if !started { interrupt.deviceNeedsReset() }
    }

    /// DEVICE_NEEDS_RESET for the activation of `epoch`, unless the driver reset the device since.
    private func needsReset(epoch: UInt64) {
        let marked = state.withLock { s -> Bool in
            guard lifecycle.current == epoch else { return false }
            s.setNeedsReset()
            return true
        }
        if marked { interrupt.signalConfigChange() }
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? {
        if offset >= Self.config { return "Config+0x\(String(offset - Self.config, radix: 16))" }
        return Register(rawValue: offset)?.name
    }

    /// The current status byte (for tests and diagnostics).
    public var deviceStatus: UInt8 { state.withLock { $0.status } }
}
