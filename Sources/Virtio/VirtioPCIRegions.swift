import Locking

/// The parts of a virtio-pci function an access can land in, for `--stats`: which structure
/// the driver keeps touching is what tells the transports apart in a profile.
public enum VirtioPCIRegion: Int, CaseIterable, Sendable {
    case configSpace, commonConfig, notify, isr, deviceConfig, msixTable, msixPBA, legacyHeader

    public var label: String {
        switch self {
        case .configSpace: "config space"
        case .commonConfig: "common config"
        case .notify: "notify"
        case .isr: "ISR"
        case .deviceConfig: "device config"
        case .msixTable: "MSI-X table"
        case .msixPBA: "MSI-X PBA"
        case .legacyHeader: "legacy header"
        }
    }

    /// The region of BAR `bar` at `offset`, in Apus's layout.
    static func of(bar: Int, offset: UInt64) -> VirtioPCIRegion? {
        typealias L = VirtioPCILayout
        switch bar {
        case L.msixBAR: return offset < L.msixPBAOffset ? .msixTable : .msixPBA
        case L.modernBAR:
            switch offset {
            case L.commonOffset..<L.commonOffset + L.commonLength: return .commonConfig
            case L.isrOffset: return .isr
            case L.deviceOffset..<L.deviceOffset + L.deviceLength: return .deviceConfig
            case L.notifyOffset..<L.notifyOffset + L.notifyLength: return .notify
            default: return nil
            }
        case L.pioNotifyBAR: return .notify
        case L.legacyBAR: return .legacyHeader
        default: return nil
        }
    }
}

/// Accesses per region that reached userspace (config cycles and BAR exits; doorbells caught
/// by ioeventfds never get here).
final class VirtioPCIAccessCounts: Sendable {
    private let counts = Locked([Int](repeating: 0, count: VirtioPCIRegion.allCases.count))

    func count(_ region: VirtioPCIRegion?) {
        guard let region else { return }
        counts.withLock { $0[region.rawValue] &+= 1 }
    }

    var snapshot: [(VirtioPCIRegion, Int)] {
        let c = counts.withLock { $0 }
        return VirtioPCIRegion.allCases.map { ($0, c[$0.rawValue]) }
    }
}
