import ByteOrder
import DeviceBus

/// The legacy virtio-pci header in I/O BAR0 of a transitional device (virtio 1.2 §4.1.4.8):
/// 32-bit features, a queue page number instead of three addresses, and the device
/// configuration right after — at 0x18 while MSI-X is enabled (two vector registers come
/// first), at 0x14 otherwise.
enum VirtioPCILegacy {
    /// The header's registers, by offset, named as Linux's `virtio_pci.h` names them.
    enum Register: UInt64, CaseIterable {
        case hostFeatures = 0x00, guestFeatures = 0x04, queuePFN = 0x08, queueNum = 0x0C
        case queueSelect = 0x0E, queueNotify = 0x10, status = 0x12, isr = 0x13
        /// Only while MSI-X is enabled (device config starts after them then).
        case configVector = 0x14, queueVector = 0x16

        var name: String {
            switch self {
            case .hostFeatures: "HOST_FEATURES"
            case .guestFeatures: "GUEST_FEATURES"
            case .queuePFN: "QUEUE_PFN"
            case .queueNum: "QUEUE_NUM"
            case .queueSelect: "QUEUE_SEL"
            case .queueNotify: "QUEUE_NOTIFY"
            case .status: "STATUS"
            case .isr: "ISR"
            case .configVector: "MSI_CONFIG_VECTOR"
            case .queueVector: "MSI_QUEUE_VECTOR"
            }
        }
    }
    static let queueNotify = Register.queueNotify.rawValue
    static func deviceConfig(msix: Bool) -> UInt64 { msix ? 0x18 : 0x14 }

    static func name(offset: UInt64, msix: Bool) -> String? {
        if offset >= deviceConfig(msix: msix) { return "legacy device config +0x\(String(offset - deviceConfig(msix: msix), radix: 16))" }
        return Register(rawValue: offset).map { "legacy " + $0.name }
    }
}

extension VirtioPCI {
    func readLegacy(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        typealias R = VirtioPCILegacy
        let (msix, configAt) = state.withLock { s in (s.msix.enabled, R.deviceConfig(msix: s.msix.enabled)) }
        if offset >= configAt {
            device.readConfig(offset: Int(offset - configAt), into: data)
            return
        }
        if offset == R.Register.isr.rawValue && data.count == 1 {
            data.storeLittleEndian(UInt64(isr.exchange(0, ordering: .acquiringAndReleasing)))
            return
        }
        let register = R.Register(rawValue: offset)
        let value: UInt64 = state.withLock { s in
            switch (register, data.count) {
            case (.hostFeatures, 4): return s.virtio.offeredFeatures & 0xFFFF_FFFF
            case (.guestFeatures, 4): return s.virtio.driverFeatures & 0xFFFF_FFFF
            case (.queuePFN, 4): return UInt64(s.virtio.legacyQueuePage())
            case (.queueNum, 2): return s.virtio.selectedQueue.map { UInt64(s.virtio.queueMaxSizes[$0]) } ?? 0
            case (.queueSelect, 2): return UInt64(s.virtio.queueSelect & 0xFFFF)
            case (.status, 1): return UInt64(s.virtio.status)
            case (.configVector, 2) where msix: return UInt64(s.vectors.config)
            case (.queueVector, 2) where msix:
                return s.virtio.selectedQueue.map { UInt64(s.vectors.queues[$0]) } ?? UInt64(VirtioPCILayout.noVector)
            default: return 0
            }
        }
        data.storeLittleEndian(value)
    }

    func writeLegacy(offset: UInt64, data: UnsafeRawBufferPointer) {
        typealias R = VirtioPCILegacy
        let value = data.littleEndianValue
        let (msix, configAt) = state.withLock { s in (s.msix.enabled, R.deviceConfig(msix: s.msix.enabled)) }
        if offset >= configAt {
            device.writeConfig(offset: Int(offset - configAt), bytes: data)
            return
        }
        let register = R.Register(rawValue: offset)
        if register == .queueNotify && data.count == 2 {
            notifyThroughExit(queue: Int(value))
            return
        }
        let action: VirtioState.StatusAction = state.withLock { s in
            s.legacyDriver = true
            switch (register, data.count) {
            case (.guestFeatures, 4):
                s.virtio.driverFeaturesSelect = 0
                s.virtio.writeDriverFeatures(UInt32(truncatingIfNeeded: value))
            case (.queuePFN, 4):
                // Only while the driver has not started the device (a running queue stays put).
                if s.virtio.status & DeviceStatus.driverOK == 0 { s.virtio.setLegacyQueue(pageNumber: UInt32(truncatingIfNeeded: value)) }
            case (.queueSelect, 2): s.virtio.queueSelect = UInt32(value)
            case (.status, 1):
                let action = s.virtio.writeStatus(UInt8(truncatingIfNeeded: value), legacy: true)
                if action == .reset { lifecycle.advance() }
                return action
            case (.configVector, 2) where msix:
                s.vectors.config = VirtioPCIVectors.checked(UInt16(truncatingIfNeeded: value), vectorCount: s.msix.vectorCount)
            case (.queueVector, 2) where msix:
                if let q = s.virtio.selectedQueue {
                    s.vectors.queues[q] = VirtioPCIVectors.checked(UInt16(truncatingIfNeeded: value), vectorCount: s.msix.vectorCount)
                }
            default: break
            }
            return .none
        }
        perform(action)
    }
}
