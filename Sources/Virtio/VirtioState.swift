import GuestMemory

/// The transport-neutral half of a virtio device's register state: status, feature
/// negotiation and the queue layouts the driver configures. Each transport maps its registers
/// onto this (virtio-mmio directly; virtio-pci through its common configuration structure).
public struct VirtioState: Sendable {
    /// One queue as the driver configures it.
    public struct QueueSetup: Sendable, Equatable {
        public var size: UInt16
        public var ready = false
        public var descriptorTable: UInt64 = 0
        public var driverArea: UInt64 = 0
        public var deviceArea: UInt64 = 0
    }

    public private(set) var status: UInt8 = 0
    public private(set) var driverFeatures: UInt64 = 0
    public var deviceFeaturesSelect: UInt32 = 0
    public var driverFeaturesSelect: UInt32 = 0
    public var queueSelect: UInt32 = 0
    public var queues: [QueueSetup]
    public let offeredFeatures: UInt64
    public let queueMaxSizes: [UInt16]
    /// Bumped whenever the device changes its configuration space.
    public var configGeneration: UInt32 = 0

    public init(offeredFeatures: UInt64, queueMaxSizes: [UInt16]) {
        self.offeredFeatures = offeredFeatures
        self.queueMaxSizes = queueMaxSizes
        queues = queueMaxSizes.map { QueueSetup(size: $0) }
    }

    /// What the transport must do after a status write.
    public enum StatusAction: Equatable, Sendable {
        case none
        /// The driver wrote 0: reset the device and this state.
        case reset
        /// The driver set DRIVER_OK with a valid setup: activate the device.
        case activate
    }

    /// The 32 offered feature bits selected by `deviceFeaturesSelect`.
    public var deviceFeaturesWindow: UInt32 {
        deviceFeaturesSelect < 2 ? UInt32(truncatingIfNeeded: offeredFeatures >> (32 * UInt64(deviceFeaturesSelect))) : 0
    }

    /// The driver writes 32 bits of its features (only before FEATURES_OK).
    public mutating func writeDriverFeatures(_ value: UInt32) {
        guard status & DeviceStatus.featuresOK == 0, driverFeaturesSelect < 2 else { return }
        let shift = 32 * UInt64(driverFeaturesSelect)
        driverFeatures = (driverFeatures & ~(0xFFFF_FFFF << shift)) | (UInt64(value) << shift)
    }

    /// Applies a status write, following the state machine of virtio 1.2 §3.1.1.
    ///
    /// A `legacy` driver (a legacy interface: virtio-pci's I/O header, virtio-mmio version 1)
    /// knows no FEATURES_OK: its features are final when it sets DRIVER_OK.
    public mutating func writeStatus(_ value: UInt8, legacy: Bool = false) -> StatusAction {
        if value == 0 {
            self = VirtioState(offeredFeatures: offeredFeatures, queueMaxSizes: queueMaxSizes)
            return .reset
        }
        var next = value
        // FEATURES_OK is refused (left clear, so the driver's read-back fails) when the driver
        // accepted a bit the device did not offer, or dropped VERSION_1.
        if !legacy && value & DeviceStatus.featuresOK != 0 && status & DeviceStatus.featuresOK == 0 {
            let unknown = driverFeatures & ~offeredFeatures
            if unknown != 0 || driverFeatures & VirtioFeature.version1 == 0 {
                next &= ~DeviceStatus.featuresOK
            }
        }
        // Bits, once set, stay set until reset (a driver cannot un-acknowledge).
        next |= status & (DeviceStatus.acknowledge | DeviceStatus.driver | DeviceStatus.featuresOK | DeviceStatus.driverOK)
        let activating = next & DeviceStatus.driverOK != 0 && status & DeviceStatus.driverOK == 0
        if activating && !legacy && next & DeviceStatus.featuresOK == 0 {
            next &= ~DeviceStatus.driverOK     // DRIVER_OK without FEATURES_OK: ignored
            status = next
            return .none
        }
        status = next
        return activating ? .activate : .none
    }

    /// Records a change of the device configuration (the driver rereads until the generation
    /// is stable, virtio 1.2 §2.5.1).
    public mutating func bumpConfigGeneration() { configGeneration &+= 1 }

    /// Sets up the selected queue the legacy way (virtio 0.9.5 §2.3): one guest page number, the
    /// rings laid out after each other with the used ring aligned to `align`, at the queue's
    /// size (its maximum unless the transport lets the driver set it). Page 0 takes the queue down.
    public mutating func setLegacyQueue(pageNumber: UInt32, pageSize: UInt64 = 4096, align: UInt64 = 4096) {
        guard let q = selectedQueue else { return }
        guard pageNumber != 0 else { queues[q].ready = false; return }
        let size = UInt64(queues[q].size)
        let desc = UInt64(pageNumber) &* pageSize
        let avail = desc &+ 16 &* size
        let alignMask = align &- 1
        let used = (avail &+ 6 &+ 2 &* size &+ alignMask) & ~alignMask
        queues[q] = QueueSetup(size: queues[q].size, ready: true, descriptorTable: desc, driverArea: avail, deviceArea: used)
    }

    /// The selected queue's legacy page number (its descriptor table / page size).
    public func legacyQueuePage(pageSize: UInt64 = 4096) -> UInt32 {
        guard let q = selectedQueue, queues[q].ready, pageSize > 0 else { return 0 }
        return UInt32(truncatingIfNeeded: queues[q].descriptorTable / pageSize)
    }

    /// Marks the device broken; the driver must reset it.
    public mutating func setNeedsReset() {
        status |= DeviceStatus.deviceNeedsReset
    }

    /// The queue the driver selected, if it exists.
    public var selectedQueue: Int? {
        Int(queueSelect) < queues.count ? Int(queueSelect) : nil
    }

    /// Builds the device's queues from the driver's setup; queues not made ready are skipped
    /// (their slot holds nil).
    public func makeQueues(memory: GuestMemory) throws(QueueError) -> [SplitQueue?] {
        var out: [SplitQueue?] = []
        for (i, q) in queues.enumerated() {
            guard q.ready else { out.append(nil); continue }
            out.append(try SplitQueue(
                memory: memory, size: q.size, maxSize: queueMaxSizes[i],
                descriptorTable: GuestAddress(q.descriptorTable), availRing: GuestAddress(q.driverArea),
                usedRing: GuestAddress(q.deviceArea), eventIndex: driverFeatures & VirtioFeature.ringEventIdx != 0))
        }
        return out
    }
}
