import ByteOrder
import DeviceBus
import Glibc
import Synchronization

/// Measures boot time: Apus starts the clock, the console's first byte is noted, and the guest's
/// init writes to this register when it starts (the demo initramfs uses `devmem`).
public final class BootTimer: BusDevice {
    public let name = "boot-timer"
    private let start: UInt64
    private let firstConsoleByte = Atomic<UInt64>(0)
    private let initReached = Atomic<UInt64>(0)

    public init() { start = Self.now() }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Call for every console byte; only the first one counts.
    @inline(__always)
    public func noteConsoleByte() {
        if firstConsoleByte.load(ordering: .relaxed) == 0 {
            _ = firstConsoleByte.compareExchange(expected: 0, desired: Self.now(), ordering: .relaxed)
        }
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) { data.storeLittleEndian(0) }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        _ = initReached.compareExchange(expected: 0, desired: Self.now(), ordering: .relaxed)
    }

    public func registerName(offset: UInt64, isWrite: Bool) -> String? { "INIT_REACHED" }

    /// Milliseconds from start to the first console byte, if any.
    public var firstConsoleByteMilliseconds: Double? { milliseconds(firstConsoleByte.load(ordering: .relaxed)) }
    /// Milliseconds from start to the guest's init, if it reported.
    public var initMilliseconds: Double? { milliseconds(initReached.load(ordering: .relaxed)) }

    private func milliseconds(_ t: UInt64) -> Double? { t == 0 ? nil : Double(t - start) / 1e6 }

    /// "boot: first console byte after 812 ms, init after 2140 ms".
    public var report: String {
        func f(_ v: Double?) -> String { v.map { "\(Int($0.rounded())) ms" } ?? "never" }
        return "boot: first console byte after \(f(firstConsoleByteMilliseconds)), init after \(f(initMilliseconds))"
    }
}
