/// How a device tells the driver something happened. The transport decides what that means:
/// virtio-mmio sets a bit in InterruptStatus and pulses an IOAPIC pin (through an irqfd);
/// virtio-pci with MSI-X signals the queue's vector.
public protocol VirtioInterrupt: Sendable {
    /// Used buffers were added to queue `queue`.
    func signalUsedBuffers(queue: Int)
    /// The device configuration changed (or the device needs a reset).
    func signalConfigChange()
    /// The driver broke the rules: set DEVICE_NEEDS_RESET and tell it.
    func deviceNeedsReset()
    /// The device stopped serving queue `queue` at its per-wake-up budget with work left: run
    /// its handler again later, after the I/O thread has seen to its other events (a stop
    /// request among them). Transports signal the queue's own doorbell eventfd.
    func serveAgain(queue: Int)
}

extension VirtioInterrupt {
    public func serveAgain(queue: Int) {}
}

/// A virtio device as every transport sees it: type, features, configuration space and queues.
///
/// Transport-neutral by construction: nothing here knows about registers, BARs or ports. The
/// transport negotiates features and queue layouts with the driver, then calls `activate` at
/// DRIVER_OK; `processQueue` runs on the device's I/O thread whenever the driver notifies.
public protocol VirtioDevice: AnyObject, Sendable {
    /// The virtio device ID (2 = block, 3 = console, 4 = entropy, …).
    var deviceType: UInt32 { get }
    /// Short name for logs, e.g. "virtio-blk0".
    var name: String { get }
    /// Features the device offers, VERSION_1 included.
    var offeredFeatures: UInt64 { get }
    /// Largest size of each queue; the count is the number of queues.
    var queueMaxSizes: [UInt16] { get }
    /// Reads device configuration space at `offset`; bytes past its end read as 0.
    func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer)
    /// Writes device configuration space (most devices ignore writes).
    func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer)
    /// The driver set DRIVER_OK: the device may use `queues` from now on.
    /// Queues the driver did not make ready are nil.
    func activate(features: UInt64, queues: [SplitQueue?], interrupt: any VirtioInterrupt) throws
    /// The driver notified queue `index`. Runs on the I/O thread.
    func processQueue(_ index: Int)
    /// The driver reset the device: forget queues and negotiated state; stop touching guest memory.
    func reset()
}

extension VirtioDevice {
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {}
}

/// Copies `config` bytes at `offset` into `buffer`, zero-filling what lies past the end — guest
/// offsets are never trusted to be inside the config structure.
public func readConfigBytes(_ config: [UInt8], offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
    for i in 0..<buffer.count {
        let at = offset + i
        buffer[i] = at >= 0 && at < config.count ? config[at] : 0
    }
}
