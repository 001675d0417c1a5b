import ByteOrder
import DeviceBus
import Synchronization

/// A device that only counts the accesses reaching it. Apus puts one behind every address that
/// an ioeventfd serves: when the ioeventfd works, the count stays 0, which is how the tests
/// prove that a notification never reached userspace.
public final class AccessCounter: BusDevice {
    public let name: String
    private let counter = Atomic<Int>(0)

    public init(name: String) { self.name = name }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        counter.add(1, ordering: .relaxed)
        data.storeLittleEndian(0)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        counter.add(1, ordering: .relaxed)
    }

    /// Accesses that exited to userspace.
    public var count: Int { counter.load(ordering: .relaxed) }
}
