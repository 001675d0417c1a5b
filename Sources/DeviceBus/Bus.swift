/// An address space (the 64 Ki I/O ports, or the guest-physical MMIO space) divided into
/// non-overlapping ranges, each owned by one device.
///
/// The bus is assembled before the vCPUs start and is immutable afterwards, so lookups on the
/// exit path take no lock. Lookup is a binary search over the sorted ranges.
public struct Bus: Sendable {
    /// One registered range.
    public struct Entry: Sendable {
        /// First address of the range.
        public let base: UInt64
        /// Length in bytes (> 0).
        public let length: UInt64
        /// The device answering there.
        public let device: any BusDevice
        /// A small dense number for this entry, for per-device statistics arrays.
        public let index: Int

        /// Whether `address` lies in the range.
        @inline(__always) func contains(_ address: UInt64) -> Bool {
            address >= base && address - base < length
        }
    }

    /// Registered ranges sorted by base.
    public private(set) var entries: [Entry] = []
    /// What this bus is called in errors and traces (`"pio"` or `"mmio"`).
    public let name: String

    public init(name: String) { self.name = name }

    /// Registers `device` at `[base, base + length)`. Refuses empty, wrapping or overlapping
    /// ranges: two devices answering the same address is always a board bug.
    public mutating func register(_ device: any BusDevice, base: UInt64, length: UInt64) throws(BusError) {
        guard length > 0, base.addingReportingOverflow(length - 1).overflow == false else {
            throw .invalidRange(bus: name, device: device.name, base: base, length: length)
        }
        let last = base + (length - 1)
        for e in entries where base <= e.base + (e.length - 1) && e.base <= last {
            throw .overlap(bus: name, device: device.name, base: base, length: length, existing: e.device.name, existingBase: e.base)
        }
        let entry = Entry(base: base, length: length, device: device, index: entries.count)
        let position = entries.firstIndex { $0.base > base } ?? entries.endIndex
        entries.insert(entry, at: position)
    }

    /// The entry containing `address`, if any.
    @inline(__always)
    public func lookup(_ address: UInt64) -> Entry? {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            let e = entries[mid]
            if address < e.base {
                high = mid
            } else if address - e.base >= e.length {
                low = mid + 1
            } else {
                return e
            }
        }
        return nil
    }

    /// Dispatches a read. An unclaimed address reads as all ones (a floating bus), and the
    /// result is `nil` so the caller can count it.
    @inline(__always) @discardableResult
    public func read(_ address: UInt64, data: UnsafeMutableRawBufferPointer) -> Entry? {
        guard let e = lookup(address) else {
            for i in 0..<data.count { data[i] = 0xFF }
            return nil
        }
        e.device.read(offset: address - e.base, data: data)
        return e
    }

    /// Dispatches a write. An unclaimed write is dropped and `nil` is returned.
    @inline(__always) @discardableResult
    public func write(_ address: UInt64, data: UnsafeRawBufferPointer) -> Entry? {
        guard let e = lookup(address) else { return nil }
        e.device.write(offset: address - e.base, data: data)
        return e
    }
}

/// Why a bus registration was refused.
public enum BusError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidRange(bus: String, device: String, base: UInt64, length: UInt64)
    case overlap(bus: String, device: String, base: UInt64, length: UInt64, existing: String, existingBase: UInt64)

    public var description: String {
        switch self {
        case let .invalidRange(bus, device, base, length):
            "\(bus) bus: \(device) asks for an invalid range 0x\(String(base, radix: 16)) length \(length)"
        case let .overlap(bus, device, base, length, existing, existingBase):
            "\(bus) bus: \(device) at 0x\(String(base, radix: 16)) (length \(length)) overlaps \(existing) at 0x\(String(existingBase, radix: 16))"
        }
    }
}
