/// What the control socket (`apus ctl balloon`, `balloon-stats`) can ask of a memory balloon.
/// `VirtioBalloon` implements it; the control side never sees virtio.
public protocol BalloonControl: AnyObject, Sendable {
    /// Asks the guest to give back memory until `bytes` of its RAM sit in the balloon (rounded
    /// down to 4 KiB pages; 0 deflates it fully). Tells the driver through a config change.
    func setTarget(bytes: UInt64)
    /// The balloon's target and the size the driver reports it holds (`actual`), in bytes.
    var sizes: (target: UInt64, actual: UInt64) { get }
    /// Asks the guest for fresh memory statistics. `completion` runs once, on a device thread,
    /// with the guest's numbers (virtio 1.2 §5.5.6.3 tag → value), or nil when the driver did not
    /// negotiate VIRTIO_BALLOON_F_STATS_VQ or has not answered within `timeoutMilliseconds`.
    func requestStatistics(timeoutMilliseconds: Int, _ completion: @escaping @Sendable ([UInt16: UInt64]?) -> Void)
}
