import DeviceBus

/// Exit counts gathered by one vCPU thread (no sharing, so no atomics on the hot path) and
/// merged once the threads have stopped.
public struct ExitStatistics: Sendable {
    /// Exits by kind, in `Kind` order.
    public var byKind = [Int](repeating: 0, count: Kind.allCases.count)
    /// Exits per port-I/O bus entry (indexed by `Bus.Entry.index`).
    public var byPIODevice: [Int]
    /// Exits per MMIO bus entry.
    public var byMMIODevice: [Int]

    public enum Kind: Int, CaseIterable, Sendable {
        case pioRead, pioWrite, mmioRead, mmioWrite, pioUnclaimed, mmioUnclaimed, interrupted, other

        var label: String {
            switch self {
            case .pioRead: "PIO in"
            case .pioWrite: "PIO out"
            case .mmioRead: "MMIO read"
            case .mmioWrite: "MMIO write"
            case .pioUnclaimed: "PIO to no device"
            case .mmioUnclaimed: "MMIO to no device"
            case .interrupted: "interrupted (kick/signal)"
            case .other: "other"
            }
        }
    }

    public init(pioDevices: Int, mmioDevices: Int) {
        byPIODevice = [Int](repeating: 0, count: pioDevices)
        byMMIODevice = [Int](repeating: 0, count: mmioDevices)
    }

    @inline(__always) mutating func count(_ kind: Kind) { byKind[kind.rawValue] &+= 1 }

    /// The number of exits of `kind`.
    public subscript(kind: Kind) -> Int { byKind[kind.rawValue] }

    /// Adds another thread's counts to these.
    public mutating func merge(_ other: ExitStatistics) {
        for i in byKind.indices { byKind[i] += other.byKind[i] }
        for i in byPIODevice.indices { byPIODevice[i] += other.byPIODevice[i] }
        for i in byMMIODevice.indices { byMMIODevice[i] += other.byMMIODevice[i] }
    }

    /// A readable table for `--stats`.
    public func report(pio: Bus, mmio: Bus) -> String {
        var lines = ["exit statistics:"]
        let total = byKind.reduce(0, +)
        lines.append("  \(pad("total exits", 28)) \(total)")
        for kind in Kind.allCases where self[kind] > 0 {
            lines.append("  \(pad(kind.label, 28)) \(self[kind])")
        }
        for (bus, counts) in [(pio, byPIODevice), (mmio, byMMIODevice)] {
            for e in bus.entries where counts[e.index] > 0 {
                let place = "\(bus.name) \(e.device.name) @0x\(String(e.base, radix: 16))"
                lines.append("  \(pad(place, 28)) \(counts[e.index])")
            }
        }
        return lines.joined(separator: "\n")
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}
