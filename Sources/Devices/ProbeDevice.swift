import ByteOrder
import DeviceBus
import Locking
import Synchronization

/// A test and benchmark device with registers whose answers a guest can check.
///
/// - offset 0, `ECHO`: a write stores the value; a read returns the last value written plus one,
///   truncated to the access size. A guest that reads back `v + 1` after writing `v` has proven
///   that its access went out to the VMM and the VMM's answer came back in.
/// - offset 8, `REPORT`: each write appends the value to a list the VMM can read after the run
///   (APIC IDs, measured cycle counts, interrupt tallies).
/// - any other offset reads 0 and ignores writes (that is the null device the exit benchmark
///   times).
///
/// Counters are atomics: the device sits on the hot exit path of several vCPU threads.
public final class ProbeDevice: BusDevice {
    public static let echoRegister: UInt64 = 0
    public static let reportRegister: UInt64 = 8
    /// Reports beyond this many are dropped: a looping guest must not grow VMM memory forever.
    public static let reportCapacity = 4096

    public let name: String
    private let lastEcho = Atomic<UInt64>(0)
    private let readCount = Atomic<Int>(0)
    private let writeCount = Atomic<Int>(0)
    private let reportList = Locked<[UInt64]>([])

    public init(name: String) { self.name = name }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        readCount.add(1, ordering: .relaxed)
        if offset == Self.echoRegister {
            data.storeLittleEndian(lastEcho.load(ordering: .relaxed) &+ 1)
        } else {
            data.storeLittleEndian(0)
        }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        writeCount.add(1, ordering: .relaxed)
        switch offset {
        case Self.echoRegister:
            lastEcho.store(data.littleEndianValue, ordering: .relaxed)
        case Self.reportRegister:
            let value = data.littleEndianValue
            reportList.withLock { list in
                if list.count < Self.reportCapacity { list.append(value) }
            }
        default:
            break
        }
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? {
        switch offset {
        case Self.echoRegister: "ECHO"
        case Self.reportRegister: "REPORT"
        default: "NULL"
        }
    }

    /// Reads the guest made (all registers).
    public var reads: Int { readCount.load(ordering: .relaxed) }
    /// Writes the guest made (all registers).
    public var writes: Int { writeCount.load(ordering: .relaxed) }
    /// Values written to `REPORT`, in order.
    public var reports: [UInt64] { reportList.withLock { $0 } }
}
