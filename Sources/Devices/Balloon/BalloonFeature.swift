/// virtio-balloon feature bits (virtio 1.2 §5.5.3).
public enum BalloonFeature {
    /// The driver must tell the host before it reuses a deflated page (not offered: a page
    /// given back with MADV_DONTNEED comes back zero-filled on the next touch, told or not).
    public static let mustTellHost: UInt64 = 1 << 0
    /// The statistics queue.
    public static let statsVQ: UInt64 = 1 << 1
    /// The driver may deflate on its own when the guest runs out of memory.
    public static let deflateOnOOM: UInt64 = 1 << 2
    /// Free page hinting (not offered).
    public static let freePageHint: UInt64 = 1 << 3
    /// Page poisoning (not offered).
    public static let pagePoison: UInt64 = 1 << 4
    /// Free page reporting: the driver hands over ranges of free memory it will not touch
    /// until it allocates them again.
    public static let reporting: UInt64 = 1 << 5
}

/// What a balloon queue carries.
public enum BalloonQueueRole: Sendable, Equatable {
    case inflate, deflate, stats, freePageHint, reporting
}

/// Which queue index plays which role, for one set of negotiated features.
///
/// The spec numbers the queues 0 inflate, 1 deflate, 2 stats, 3 free page hint, 4 reporting,
/// but Linux (`init_vqs`, `virtio_find_vqs`) only numbers the queues whose feature was
/// negotiated: without STATS_VQ, the reporting queue is 2. QEMU numbers them the same way, so
/// this is what drivers expect.
public struct BalloonQueueLayout: Sendable, Equatable {
    /// The role of each queue, by index.
    public let roles: [BalloonQueueRole]

    public init(features: UInt64) {
        var roles: [BalloonQueueRole] = [.inflate, .deflate]
        if features & BalloonFeature.statsVQ != 0 { roles.append(.stats) }
        if features & BalloonFeature.freePageHint != 0 { roles.append(.freePageHint) }
        if features & BalloonFeature.reporting != 0 { roles.append(.reporting) }
        self.roles = roles
    }

    /// The role of queue `index`, or nil when no negotiated feature gives that index a queue.
    public func role(ofQueue index: Int) -> BalloonQueueRole? {
        roles.indices.contains(index) ? roles[index] : nil
    }

    /// The index of the queue playing `role`, if it exists.
    public func index(of role: BalloonQueueRole) -> Int? { roles.firstIndex(of: role) }
}
