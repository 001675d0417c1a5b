import ByteOrder
import DeviceBus

/// The legacy virtio-pci header in I/O BAR0 of a transitional device (virtio 1.2 §4.1.4.8):
/// 32-bit features, a queue page number instead of three addresses, and the device
/// configuration right after — at 0x18 while MSI-X is enabled (two vector registers come
/// first), at 0x14 otherwise.
enum VirtioPCILegacy {
    static let hostFeatures: UInt64 = 0x00, guestFeatures: UInt64 = 0x04, queuePFN: UInt64 = 0x08
    static let queueNum: UInt64 = 0x0C, queueSelect: UInt64 = 0x0E, queueNotify: UInt64 = 0x10
    static let status: UInt64 = 0x12, isr: UInt64 = 0x13
    static let configVector: UInt64 = 0x14, queueVector: UInt64 = 0x16
    static func deviceConfig(msix: Bool) -> UInt64 { msix ? 0x18 : 0x14 }

    static func name(offset: UInt64, msix: Bool) -> String? {
        if offset >= deviceConfig(msix: msix) { return "legacy device config +0x\(String(offset - deviceConfig(msix: msix), radix: 16))" }
        switch offset {
        case hostFeatures: return "legacy HOST_FEATURES"
        case guestFeatures: return "legacy GUEST_FEATURES"
        case queuePFN: return "legacy QUEUE_PFN"
        case queueNum: return "legacy QUEUE_NUM"
        case queueSelect: return "legacy QUEUE_SEL"
        case queueNotify: return "legacy QUEUE_NOTIFY"
        case status: return "legacy STATUS"
        case isr: return "legacy ISR"
        case configVector: return "legacy CONFIG_VECTOR"
        case queueVector: return "legacy QUEUE_VECTOR"
        default: return nil
        }
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
        if offset == R.isr && data.count == 1 {
            data.storeLittleEndian(UInt64(isr.exchange(0, ordering: .acquiringAndReleasing)))
            return
        }
        let value: UInt64 = state.withLock { s in
            switch (offset, data.count) {
            case (R.hostFeatures, 4): return s.virtio.offeredFeatures & 0xFFFF_FFFF
            case (R.guestFeatures, 4): return s.virtio.driverFeatures & 0xFFFF_FFFF
            case (R.queuePFN, 4): return UInt64(s.virtio.legacyQueuePage())
            case (R.queueNum, 2): return s.virtio.selectedQueue.map { UInt64(s.virtio.queueMaxSizes[$0]) } ?? 0
            case (R.queueSelect, 2): return UInt64(s.virtio.queueSelect & 0xFFFF)
            case (R.status, 1): return UInt64(s.virtio.status)
            case (R.configVector, 2) where msix: return UInt64(s.vectors.config)
            case (R.queueVector, 2) where msix:
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
        if offset == R.queueNotify && data.count == 2 {
            notifyThroughExit(queue: Int(value))
            return
        }
        let action: VirtioState.StatusAction = state.withLock { s in
            s.legacyDriver = true
            switch (offset, data.count) {
            case (R.guestFeatures, 4):
                s.virtio.driverFeaturesSelect = 0
                s.virtio.writeDriverFeatures(UInt32(truncatingIfNeeded: value))
            case (R.queuePFN, 4):
                // Only while the driver has not started the device (a running queue stays put).
                if s.virtio.status & DeviceStatus.driverOK == 0 { s.virtio.setLegacyQueue(pageNumber: UInt32(truncatingIfNeeded: value)) }
            case (R.queueSelect, 2): s.virtio.queueSelect = UInt32(value)
            case (R.status, 1): return s.virtio.writeStatus(UInt8(truncatingIfNeeded: value), legacy: true)
            case (R.configVector, 2) where msix:
                s.vectors.config = VirtioPCIVectors.checked(UInt16(truncatingIfNeeded: value), vectorCount: s.msix.vectorCount)
            case (R.queueVector, 2) where msix:
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
