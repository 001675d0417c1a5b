import ByteOrder
import DeviceBus

/// A one-register device that ends the VM: the guest writes a byte, Apus exits with that byte as
/// its status. Bare-metal test guests report pass/fail through it.
public final class DebugExitPort: BusDevice {
    public let name = "debug-exit"
    private let onExit: @Sendable (UInt8) -> Void

    /// `onExit` receives the status byte; it runs on the vCPU thread that wrote it.
    public init(onExit: @escaping @Sendable (UInt8) -> Void) { self.onExit = onExit }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        data.storeLittleEndian(0)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard data.count > 0 else { return }
        onExit(data[0])
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? { "EXIT" }
}
