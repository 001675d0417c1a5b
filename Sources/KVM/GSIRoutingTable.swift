import CKVM

/// The GSI routing table: for each global system interrupt number, where KVM delivers it.
///
/// `KVM_SET_GSI_ROUTING` replaces the whole table, and the in-kernel irqchip's default routes
/// (GSI n → IOAPIC pin n and, below 16, PIC pin n) disappear unless repeated — so this value
/// starts from those defaults and adds MSI routes on top.
public struct GSIRoutingTable: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        /// A pin of an in-kernel interrupt controller (KVM_IRQCHIP_PIC_MASTER/SLAVE/IOAPIC).
        case irqchip(chip: UInt32, pin: UInt32)
        /// A message-signalled interrupt.
        case msi(MSIMessage)
    }
    public struct Route: Sendable, Equatable {
        public var gsi: UInt32
        public var target: Target
    }

    public private(set) var routes: [Route] = []

    /// An empty table (every GSI unrouted).
    public init() {}

    /// The routes KVM installs with `KVM_CREATE_IRQCHIP`: GSI 0–15 to both PICs and the IOAPIC,
    /// 16–23 to the IOAPIC only. (KVM itself skips the PIC for GSI 2, the cascade.)
    public static func withDefaultIRQChipRoutes() -> GSIRoutingTable {
        var t = GSIRoutingTable()
        for gsi in UInt32(0)..<24 {
            if gsi < 16 && gsi != 2 {
                let chip = gsi < 8 ? UInt32(KVM_IRQCHIP_PIC_MASTER) : UInt32(KVM_IRQCHIP_PIC_SLAVE)
                t.routes.append(Route(gsi: gsi, target: .irqchip(chip: chip, pin: gsi % 8)))
            }
            t.routes.append(Route(gsi: gsi, target: .irqchip(chip: UInt32(KVM_IRQCHIP_IOAPIC), pin: gsi)))
        }
        return t
    }

    /// Routes `gsi` to an MSI, replacing any MSI route it had.
    public mutating func setMSI(gsi: UInt32, _ message: MSIMessage) {
        routes.removeAll { $0.gsi == gsi }
        routes.append(Route(gsi: gsi, target: .msi(message)))
    }

    /// The most routes one table can carry (the C buffer's size; KVM itself allows 4096).
    public static let capacity = Int(APUS_MAX_IRQ_ROUTES)

    /// Removes every route of `gsi`.
    public mutating func remove(gsi: UInt32) {
        routes.removeAll { $0.gsi == gsi }
    }

    /// The table in KVM's layout; nil when it holds more routes than fit (never truncated).
    func raw() -> apus_irq_routing? {
        guard routes.count <= Self.capacity else { return nil }
        var raw = apus_irq_routing()
        let count = routes.count
        raw.header.nr = UInt32(count)
        withUnsafeMutableBytes(of: &raw.entries) { bytes in
            let entries = bytes.bindMemory(to: kvm_irq_routing_entry.self)
            for i in 0..<count {
                entries[i] = kvm_irq_routing_entry()
                entries[i].gsi = routes[i].gsi
                switch routes[i].target {
                case let .irqchip(chip, pin):
                    apus_route_set_irqchip(&entries[i], chip, pin)
                case let .msi(m):
                    apus_route_set_msi(&entries[i], UInt32(truncatingIfNeeded: m.address),
                                       UInt32(truncatingIfNeeded: m.address >> 32), m.data)
                }
            }
        }
        return raw
    }
}
