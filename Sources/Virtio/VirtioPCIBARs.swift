import Diagnostics
import ByteOrder
import DeviceBus
import PCI

/// BAR accesses of a virtio-pci function: MSI-X table and PBA, the modern structures, the
/// port-I/O notify area and the legacy header.
extension VirtioPCI {
    public func readBAR(_ bar: Int, offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        typealias L = VirtioPCILayout
        accesses.count(.of(bar: bar, offset: offset))
        switch bar {
        case L.msixBAR:
            state.withLock { s in
                if offset < L.msixPBAOffset { s.msix.readTable(offset: Int(offset), into: data) }
                else { s.msix.readPBA(offset: Int(offset - L.msixPBAOffset), into: data) }
            }
        case L.modernBAR:
            switch offset {
            case L.commonOffset..<L.commonOffset + L.commonLength:
                let value: UInt64 = state.withLock { s in
                    guard let (field, shift) = VirtioPCICommonConfig.decode(offset: Int(offset - L.commonOffset), count: data.count) else { return 0 }
                    return s.virtio.readCommon(field, vectors: s.vectors) >> (8 * UInt64(shift))
                }
                data.storeLittleEndian(value)
            case L.isrOffset:
                // Reading ISR status clears it (and so deasserts INTx: the machine's resample
                // then finds nothing pending).
                data.storeLittleEndian(UInt64(isr.exchange(0, ordering: .acquiringAndReleasing)))
            case L.deviceOffset..<L.deviceOffset + L.deviceLength:
                device.readConfig(offset: Int(offset - L.deviceOffset), into: data)
            default:
                data.storeLittleEndian(0)
            }
        case L.legacyBAR where options.transitional:
            readLegacy(offset: offset, into: data)
        default:
            data.storeLittleEndian(0)
        }
    }

    public func writeBAR(_ bar: Int, offset: UInt64, data: UnsafeRawBufferPointer) {
        typealias L = VirtioPCILayout
        accesses.count(.of(bar: bar, offset: offset))
        switch bar {
        case L.msixBAR:
            guard offset < L.msixPBAOffset else { return }   // the PBA is read-only
            apply(state.withLock { $0.msix.writeTable(offset: Int(offset), data: data) })
        case L.modernBAR:
            switch offset {
            case L.commonOffset..<L.commonOffset + L.commonLength:
                writeCommon(offset: Int(offset - L.commonOffset), data: data)
            case L.deviceOffset..<L.deviceOffset + L.deviceLength:
                device.writeConfig(offset: Int(offset - L.deviceOffset), bytes: data)
            case L.notifyOffset..<L.notifyOffset + L.notifyLength where !options.notifyByPortIO:
                notifyThroughExit(queue: Int((offset - L.notifyOffset) / UInt64(L.notifyMultiplier)))
            default:
                break
            }
        case L.pioNotifyBAR where options.notifyByPortIO:
            notifyThroughExit(queue: Int(offset / UInt64(L.notifyMultiplier)))
        case L.legacyBAR where options.transitional:
            writeLegacy(offset: offset, data: data)
        default:
            break
        }
    }

    private func writeCommon(offset: Int, data: UnsafeRawBufferPointer) {
        guard let (field, shift) = VirtioPCICommonConfig.decode(offset: offset, count: data.count) else { return }
        let action = state.withLock { s in
            s.legacyDriver = false
            let action = s.virtio.writeCommon(field, shift: shift, count: data.count, value: data.littleEndianValue,
                                              vectors: &s.vectors, vectorCount: s.msix.vectorCount)
            if action == .reset { lifecycle.advance() }
            return action
        }
        perform(action)
    }

    /// Carries out what a status write asked for.
    func perform(_ action: VirtioState.StatusAction) {
        switch action {
        case .none: break
        case .reset:
            lifecycle.reset(device) {
                isr.store(0, ordering: .releasing)
                state.withLock { $0.vectors = VirtioPCIVectors(queueCount: device.queueMaxSizes.count) }
            }
        case .activate:
            let started = lifecycle.activate(device, interrupt: self, log: log,
                                             needsReset: { [weak self] epoch in self?.needsReset(epoch: epoch) }) {
                state.withLock { s in
                    // A reset since the DRIVER_OK write: nothing to start.
                    guard s.virtio.status & DeviceStatus.driverOK != 0 else { return nil }
                    return (Result { () throws(QueueError) in (try s.virtio.makeQueues(memory: memory), s.virtio.driverFeatures) },
                            lifecycle.current)
                }
            }
            if !started { deviceNeedsReset() }
        }
    }

    /// Delivers what an MSI-X change released: new routes first, then pending vectors.
    func apply(_ effects: MSIXTable.Effects) {
        for r in effects.reroute { sink.route(vector: r.vector, message: r.message) }
        for v in effects.deliver { sink.signal(vector: v) }
    }

    public func barRegisterName(_ bar: Int, offset: UInt64) -> String? {
        typealias L = VirtioPCILayout
        switch bar {
        case L.msixBAR:
            return offset < L.msixPBAOffset ? "MSI-X vector \(offset / 16) \(["addr_lo", "addr_hi", "data", "ctrl"][Int(offset % 16) / 4])" : "MSI-X PBA"
        case L.modernBAR:
            switch offset {
            case L.commonOffset..<L.commonOffset + L.commonLength: return "common " + (VirtioPCICommonConfig.name(offset: Int(offset)) ?? "?")
            case L.isrOffset: return "ISR"
            case L.deviceOffset..<L.deviceOffset + L.deviceLength: return "device config +0x\(String(offset - L.deviceOffset, radix: 16))"
            case L.notifyOffset..<L.notifyOffset + L.notifyLength: return "notify queue \((offset - L.notifyOffset) / UInt64(L.notifyMultiplier))"
            default: return nil
            }
        case L.pioNotifyBAR: return "notify queue \(offset / UInt64(L.notifyMultiplier))"
        case L.legacyBAR: return VirtioPCILegacy.name(offset: offset, msix: state.withLock { $0.msix.enabled })
        default: return nil
        }
    }

    // MARK: Interrupts (VirtioInterrupt; called on the device's I/O thread)

    /// Where an interrupt goes: an MSI-X vector, the INTx pin, or nowhere.
    private enum Target { case vector(Int), intx, none }

    private func target(vector: (State) -> UInt16, isrBit: UInt8) -> Target {
        state.withLock { s in
            guard s.msix.enabled else { return .intx }
            let v = vector(s)
            guard v != VirtioPCILayout.noVector else { return .none }
            return s.msix.fire(Int(v)) ? .vector(Int(v)) : .none
        } as Target
    }

    private func raise(_ target: Target, isrBit: UInt8) {
        switch target {
        case let .vector(v): sink.signal(vector: v)
        case .intx:
            isr.bitwiseOr(isrBit, ordering: .acquiringAndReleasing)
            if !intxDisabled { sink.assertINTx() }
        case .none: break
        }
    }

    private var intxDisabled: Bool { state.withLock { $0.config.command & PCIConfig.commandINTxDisable != 0 } }

    public func signalUsedBuffers(queue: Int) {
        raise(target(vector: { queue < $0.vectors.queues.count ? $0.vectors.queues[queue] : VirtioPCILayout.noVector }, isrBit: 1), isrBit: 1)
    }

    public func signalConfigChange() {
        state.withLock { $0.virtio.bumpConfigGeneration() }
        raise(target(vector: { $0.vectors.config }, isrBit: 2), isrBit: 2)
    }

    public func serveAgain(queue: Int) {
        if queue >= 0 && queue < device.queueMaxSizes.count { notify(queue) }
    }

    /// DEVICE_NEEDS_RESET for the activation of `epoch`, unless the driver reset the device since.
    func needsReset(epoch: UInt64) {
        let marked = state.withLock { s -> Bool in
            guard lifecycle.current == epoch else { return false }
            s.virtio.setNeedsReset()
            return true
        }
        if marked { signalConfigChange() }
    }

    public func deviceNeedsReset() {
        state.withLock { $0.virtio.setNeedsReset() }
        signalConfigChange()
    }

    /// Whether INTx should still be asserted (the machine asks after the guest's EOI).
    public var intxPending: Bool { isr.load(ordering: .acquiring) != 0 && !intxDisabled }
}
