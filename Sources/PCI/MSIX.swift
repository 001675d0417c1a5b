import ByteOrder
import DeviceBus

/// A message a device writes to signal an interrupt (x86: address 0xFEEx_xxxx, data = vector
/// and delivery mode).
public struct MSIXMessage: Sendable, Equatable {
    public var address: UInt64
    public var data: UInt32
    public init(address: UInt64, data: UInt32) { self.address = address; self.data = data }
}

/// MSI-X state of one function (PCI Local Bus 3.0 §6.8.2): the capability's control word, the
/// vector table and the pending-bit array. Pure state — the owner holds it under its lock and
/// acts on what the mutating calls return (deliver a message, re-route a vector).
///
/// Every vector starts masked. A vector that fires while masked (by its own mask bit or by the
/// function mask) sets its pending bit instead, and is delivered when unmasked.
public struct MSIXTable: Sendable {
    /// MSI-X capability ID, and the capability's size in config space.
    public static let capabilityID: UInt8 = 0x11
    public static let entrySize = 16
    static let enableBit: UInt16 = 1 << 15, functionMaskBit: UInt16 = 1 << 14
    static let vectorMaskBit: UInt32 = 1

    struct Entry: Sendable {
        var addressLow: UInt32 = 0, addressHigh: UInt32 = 0, data: UInt32 = 0
        var control: UInt32 = MSIXTable.vectorMaskBit
        var message: MSIXMessage { MSIXMessage(address: UInt64(addressHigh) << 32 | UInt64(addressLow), data: data) }
        var masked: Bool { control & MSIXTable.vectorMaskBit != 0 }
    }

    private var entries: [Entry]
    private var pending: [Bool]
    public private(set) var enabled = false
    public private(set) var functionMasked = false

    public init(vectors: Int) {
        precondition(vectors >= 1 && vectors <= 2048)
        entries = Array(repeating: Entry(), count: vectors)
        pending = Array(repeating: false, count: vectors)
    }

    public var vectorCount: Int { entries.count }
    /// Bytes of table and of PBA (the PBA in whole qwords).
    public var tableSize: Int { entries.count * Self.entrySize }
    public var pbaSize: Int { (entries.count + 63) / 64 * 8 }

    /// The capability's Message Control word: table size − 1, function mask, enable.
    public var messageControl: UInt16 {
        UInt16(entries.count - 1) | (functionMasked ? Self.functionMaskBit : 0) | (enabled ? Self.enableBit : 0)
    }

    /// What changed after a write, for the owner to act on.
    public struct Effects: Sendable, Equatable {
        /// Vectors whose message the interrupt routes must now carry (or drop, when nil).
        public var reroute: [(vector: Int, message: MSIXMessage?)] = []
        /// Vectors to deliver now (their pending bit was set and they just became unmasked).
        public var deliver: [Int] = []
        public init() {}
        public static func == (a: Effects, b: Effects) -> Bool {
            a.deliver == b.deliver && a.reroute.map(\.vector) == b.reroute.map(\.vector) && a.reroute.map(\.message) == b.reroute.map(\.message)
        }
    }

    /// Whether `vector` can be delivered right now.
    public func deliverable(_ vector: Int) -> Bool {
        enabled && !functionMasked && vector < entries.count && !entries[vector].masked
    }

    /// The message of a vector the guest has set up and unmasked; nil otherwise.
    public func activeMessage(_ vector: Int) -> MSIXMessage? {
        guard vector < entries.count, enabled, !entries[vector].masked else { return nil }
        return entries[vector].message
    }

    /// The device wants `vector`: true to deliver now, false when it was left pending (masked).
    public mutating func fire(_ vector: Int) -> Bool {
        guard vector < entries.count else { return false }
        if deliverable(vector) { return true }
        pending[vector] = true
        return false
    }

    /// A write to Message Control (the upper byte holds the two writable bits).
    public mutating func writeMessageControl(_ value: UInt16) -> Effects {
        let before = entries.indices.map { activeMessage($0) }
        enabled = value & Self.enableBit != 0
        functionMasked = value & Self.functionMaskBit != 0
        return effects(comparedWith: before, vectors: entries.indices)
    }

    /// A read inside the table; only aligned dwords and qwords are defined, others read 0.
    public func readTable(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        guard data.count == 4 || data.count == 8, offset % data.count == 0, offset >= 0, offset + data.count <= tableSize else {
            data.storeLittleEndian(0)
            return
        }
        var value: UInt64 = 0
        for d in 0..<(data.count / 4) {
            let at = offset + 4 * d
            let e = entries[at / Self.entrySize]
            let field: UInt32 = switch at % Self.entrySize {
            case 0: e.addressLow
            case 4: e.addressHigh
            case 8: e.data
            default: e.control
            }
            value |= UInt64(field) << (32 * UInt64(d))
        }
        data.storeLittleEndian(value)
    }

    /// A write inside the table (aligned dwords and qwords; anything else is dropped).
    public mutating func writeTable(offset: Int, data: UnsafeRawBufferPointer) -> Effects {
        guard data.count == 4 || data.count == 8, offset % data.count == 0, offset >= 0, offset + data.count <= tableSize else {
            return Effects()
        }
        let value = data.littleEndianValue
        let first = offset / Self.entrySize, last = (offset + data.count - 1) / Self.entrySize
        let before = (first...last).map { activeMessage($0) }
        for d in 0..<(data.count / 4) {
            let at = offset + 4 * d
            let v = at / Self.entrySize
            let field = UInt32(truncatingIfNeeded: value >> (32 * UInt64(d)))
            switch at % Self.entrySize {
            case 0: entries[v].addressLow = field & ~0x3   // dword-aligned address
            case 4: entries[v].addressHigh = field
            case 8: entries[v].data = field
            default: entries[v].control = field & Self.vectorMaskBit
            }
        }
        return effects(comparedWith: before, vectors: first...last)
    }

    /// The routes that changed since `before` (the active messages of `vectors` then), and the
    /// pending vectors that can now be delivered.
    private mutating func effects<C: Collection<Int>>(comparedWith before: [MSIXMessage?], vectors: C) -> Effects {
        var effects = Effects()
        for (v, old) in zip(vectors, before) where activeMessage(v) != old { effects.reroute.append((v, activeMessage(v))) }
        effects.deliver = drainPending()
        return effects
    }

    /// The pending-bit array; read-only to the guest.
    public func readPBA(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        var value: UInt64 = 0
        for i in 0..<data.count {
            var byte: UInt8 = 0
            for bit in 0..<8 {
                let v = (offset + i) * 8 + bit
                if offset + i >= 0, v < pending.count, pending[v] { byte |= 1 << bit }
            }
            value |= UInt64(byte) << (8 * UInt64(i))
        }
        data.storeLittleEndian(value)
    }

    public func isPending(_ vector: Int) -> Bool { vector < pending.count && pending[vector] }

    /// Clears and returns the pending vectors that can now be delivered.
    private mutating func drainPending() -> [Int] {
        var out: [Int] = []
        for v in pending.indices where pending[v] && deliverable(v) {
            pending[v] = false
            out.append(v)
        }
        return out
    }

    /// Back to reset state (function-level reset): disabled, all vectors masked, nothing pending.
    public mutating func reset() { self = MSIXTable(vectors: entries.count) }
}
