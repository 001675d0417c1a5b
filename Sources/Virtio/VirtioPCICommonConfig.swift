/// The common configuration structure of virtio-pci (virtio 1.2 §4.1.4.3): feature
/// negotiation, status and queue setup, mapped onto the transport-neutral `VirtioState`.
///
/// Fields are accessed with their natural width (the spec requires it of drivers); the
/// 64-bit queue addresses also as two 32-bit halves, which is how Linux writes them.
/// Anything else reads as 0 and is ignored when written.
enum VirtioPCICommonConfig {
    enum Field: Int, CaseIterable {
        case deviceFeatureSelect = 0x00, deviceFeature = 0x04, driverFeatureSelect = 0x08, driverFeature = 0x0C
        case msixConfig = 0x10, numQueues = 0x12, deviceStatus = 0x14, configGeneration = 0x15
        case queueSelect = 0x16, queueSize = 0x18, queueMSIXVector = 0x1A, queueEnable = 0x1C
        case queueNotifyOff = 0x1E, queueDesc = 0x20, queueDriver = 0x28, queueDevice = 0x30
        case queueNotifyData = 0x38, queueReset = 0x3A

        var width: Int {
            switch self {
            case .deviceStatus, .configGeneration: 1
            case .msixConfig, .numQueues, .queueSelect, .queueSize, .queueMSIXVector, .queueEnable,
                 .queueNotifyOff, .queueNotifyData, .queueReset: 2
            case .deviceFeatureSelect, .deviceFeature, .driverFeatureSelect, .driverFeature: 4
            case .queueDesc, .queueDriver, .queueDevice: 8
            }
        }

        var name: String {
            switch self {
            case .deviceFeatureSelect: "device_feature_select"
            case .deviceFeature: "device_feature"
            case .driverFeatureSelect: "driver_feature_select"
            case .driverFeature: "driver_feature"
            case .msixConfig: "config_msix_vector"
            case .numQueues: "num_queues"
            case .deviceStatus: "device_status"
            case .configGeneration: "config_generation"
            case .queueSelect: "queue_select"
            case .queueSize: "queue_size"
            case .queueMSIXVector: "queue_msix_vector"
            case .queueEnable: "queue_enable"
            case .queueNotifyOff: "queue_notify_off"
            case .queueDesc: "queue_desc"
            case .queueDriver: "queue_driver"
            case .queueDevice: "queue_device"
            case .queueNotifyData: "queue_notify_data"
            case .queueReset: "queue_reset"
            }
        }
    }

    /// The field an access of `count` bytes at `offset` addresses, and the byte shift inside it
    /// (4 for the high half of a 64-bit field); nil for any other access.
    static func decode(offset: Int, count: Int) -> (Field, shift: Int)? {
        for f in Field.allCases {
            if offset == f.rawValue && count == f.width { return (f, 0) }
            if f.width == 8 && count == 4 && (offset == f.rawValue || offset == f.rawValue + 4) { return (f, offset - f.rawValue) }
        }
        return nil
    }

    /// A field's name with the half, for `--trace exits`.
    static func name(offset: Int) -> String? {
        for f in Field.allCases where offset >= f.rawValue && offset < f.rawValue + f.width {
            return f.width == 8 ? f.name + (offset >= f.rawValue + 4 ? "_hi" : "_lo") : f.name
        }
        return nil
    }
}

/// Virtio-pci register state that the transport-neutral `VirtioState` has no place for: which
/// MSI-X vector each interrupt source uses.
struct VirtioPCIVectors: Sendable {
    var config = VirtioPCILayout.noVector
    var queues: [UInt16]

    init(queueCount: Int) { queues = Array(repeating: VirtioPCILayout.noVector, count: queueCount) }

    /// A vector number the function does not have is stored as NO_VECTOR, so the driver's
    /// read-back tells it the mapping failed (virtio 1.2 §4.1.5.1.2).
    static func checked(_ value: UInt16, vectorCount: Int) -> UInt16 {
        Int(value) < vectorCount ? value : VirtioPCILayout.noVector
    }
}

extension VirtioState {
    /// Reads a common-config field (the transport supplies the parts that are its own).
    func readCommon(_ field: VirtioPCICommonConfig.Field, vectors: VirtioPCIVectors) -> UInt64 {
        let q = selectedQueue
        switch field {
        case .deviceFeatureSelect: return UInt64(deviceFeaturesSelect)
        case .deviceFeature: return UInt64(deviceFeaturesWindow)
        case .driverFeatureSelect: return UInt64(driverFeaturesSelect)
        case .driverFeature:
            return driverFeaturesSelect < 2 ? UInt64(UInt32(truncatingIfNeeded: driverFeatures >> (32 * UInt64(driverFeaturesSelect)))) : 0
        case .msixConfig: return UInt64(vectors.config)
        case .numQueues: return UInt64(queues.count)
        case .deviceStatus: return UInt64(status)
        case .configGeneration: return UInt64(UInt8(truncatingIfNeeded: configGeneration))
        case .queueSelect: return UInt64(queueSelect & 0xFFFF)
        case .queueSize: return q.map { UInt64(queues[$0].size) } ?? 0
        case .queueMSIXVector: return q.map { UInt64(vectors.queues[$0]) } ?? UInt64(VirtioPCILayout.noVector)
        case .queueEnable: return q.map { queues[$0].ready ? 1 : 0 } ?? 0
        case .queueNotifyOff: return q.map { UInt64($0) } ?? 0
        case .queueDesc: return q.map { queues[$0].descriptorTable } ?? 0
        case .queueDriver: return q.map { queues[$0].driverArea } ?? 0
        case .queueDevice: return q.map { queues[$0].deviceArea } ?? 0
        case .queueNotifyData, .queueReset: return 0
        }
    }

    /// Writes a common-config field; a status write returns what the transport must do.
    mutating func writeCommon(_ field: VirtioPCICommonConfig.Field, shift: Int, count: Int, value: UInt64,
                              vectors: inout VirtioPCIVectors, vectorCount: Int) -> StatusAction {
        let v32 = UInt32(truncatingIfNeeded: value)
        // Queue layout may change only while the queue is disabled (§4.1.4.3.2).
        func updateQueue(_ body: (inout QueueSetup) -> Void) {
            guard let q = selectedQueue, !queues[q].ready else { return }
            body(&queues[q])
        }
        func merged(_ old: UInt64) -> UInt64 {
            count == 8 ? value : shift == 0 ? (old & ~0xFFFF_FFFF) | UInt64(v32) : (old & 0xFFFF_FFFF) | UInt64(v32) << 32
        }
        switch field {
        case .deviceFeatureSelect: deviceFeaturesSelect = v32
        case .driverFeatureSelect: driverFeaturesSelect = v32
        case .driverFeature: writeDriverFeatures(v32)
        case .msixConfig: vectors.config = VirtioPCIVectors.checked(UInt16(truncatingIfNeeded: value), vectorCount: vectorCount)
        case .deviceStatus: return writeStatus(UInt8(truncatingIfNeeded: value))
        case .queueSelect: queueSelect = v32 & 0xFFFF
        case .queueSize: updateQueue { $0.size = UInt16(truncatingIfNeeded: value) }
        case .queueMSIXVector:
            if let q = selectedQueue { vectors.queues[q] = VirtioPCIVectors.checked(UInt16(truncatingIfNeeded: value), vectorCount: vectorCount) }
        case .queueEnable: if value & 1 == 1, let q = selectedQueue { queues[q].ready = true }
        case .queueDesc: updateQueue { $0.descriptorTable = merged($0.descriptorTable) }
        case .queueDriver: updateQueue { $0.driverArea = merged($0.driverArea) }
        case .queueDevice: updateQueue { $0.deviceArea = merged($0.deviceArea) }
        case .deviceFeature, .numQueues, .configGeneration, .queueNotifyOff, .queueNotifyData, .queueReset: break
        }
        return .none
    }
}
