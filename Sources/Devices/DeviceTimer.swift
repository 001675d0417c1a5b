/// Runs work later on a device's own I/O thread: what a device needs to give up waiting for
/// the guest (a statistics request the driver never answers) or to poll it now and then.
/// The machine's `IOEventLoop` is one; tests use a clock they turn by hand.
public protocol DeviceTimer: Sendable {
    /// Runs `action` once, on the device's I/O thread, no sooner than `milliseconds` from now.
    func schedule(afterMilliseconds milliseconds: Int, _ action: @escaping @Sendable () -> Void)
}
