import ByteOrder

/// The 256-byte configuration space of one type-0 PCI function, as a register file with a
/// write mask per byte: what the guest may change, it changes; everything else is read-only.
///
/// BARs are plain registers whose writable bits are the address bits at or above the BAR's
/// size, so writing all ones reads back the size mask with the type bits kept — the sizing
/// protocol every OS uses — with no special case. Capabilities are appended with
/// `addCapability`, which links them into the list at 0x34.
public struct PCIConfigSpace: Sendable {
    private var bytes = [UInt8](repeating: 0, count: PCIConfig.size)
    private var writable = [UInt8](repeating: 0, count: PCIConfig.size)
    public private(set) var bars: [PCIBarDefinition?] = Array(repeating: nil, count: 6)
    private var lastCapability: Int?
    /// First free byte for the next capability.
    private var nextCapability = 0x40

    /// The identity of a function: what `lspci -n` shows.
    public struct Identity: Sendable {
        public var vendor: UInt16, device: UInt16, revision: UInt8
        public var classCode: UInt32   // base class, subclass, programming interface
        public var subsystemVendor: UInt16, subsystem: UInt16
        public init(vendor: UInt16, device: UInt16, revision: UInt8, classCode: UInt32,
                    subsystemVendor: UInt16 = 0, subsystem: UInt16 = 0) {
            self.vendor = vendor; self.device = device; self.revision = revision
            self.classCode = classCode; self.subsystemVendor = subsystemVendor; self.subsystem = subsystem
        }
    }

    /// - Parameter interruptPin: 1–4 for INTA#–INTD#, 0 for none.
    public init(identity: Identity, interruptPin: UInt8 = 0) {
        set16(PCIConfig.vendorID, identity.vendor)
        set16(PCIConfig.deviceID, identity.device)
        bytes[PCIConfig.revisionID] = identity.revision
        bytes[0x09] = UInt8(truncatingIfNeeded: identity.classCode)
        bytes[0x0A] = UInt8(truncatingIfNeeded: identity.classCode >> 8)
        bytes[0x0B] = UInt8(truncatingIfNeeded: identity.classCode >> 16)
        set16(PCIConfig.subsystemVendorID, identity.subsystemVendor)
        set16(PCIConfig.subsystemID, identity.subsystem)
        bytes[PCIConfig.interruptPin] = interruptPin
        let commandMask = PCIConfig.commandIO | PCIConfig.commandMemory | PCIConfig.commandBusMaster
            | (interruptPin != 0 ? PCIConfig.commandINTxDisable : 0)
        setMask(PCIConfig.command, UInt32(commandMask), width: 2)
        writable[PCIConfig.cacheLineSize] = 0xFF
        writable[PCIConfig.latencyTimer] = 0xFF
        writable[PCIConfig.interruptLine] = 0xFF
    }

    // MARK: Building

    /// Defines BAR `index` and places it at its initial address.
    public mutating func defineBAR(_ index: Int, _ bar: PCIBarDefinition) {
        precondition(index < 6 && bars[index] == nil)
        bars[index] = bar
        let offset = PCIConfig.bar0 + 4 * index
        set32(offset, UInt32(truncatingIfNeeded: bar.initialAddress) & bar.addressMask | bar.typeBits)
        setMask(offset, bar.addressMask, width: 4)
    }

    /// Appends a capability with ID `id` and `body` (the bytes after ID and next pointer), and
    /// returns its offset. `writableBody` marks body bytes the guest may write (same length).
    @discardableResult
    public mutating func addCapability(id: UInt8, body: [UInt8], writableBody: [UInt8]? = nil) -> Int {
        let offset = nextCapability
        precondition(offset + 2 + body.count <= PCIConfig.size, "capabilities overflow config space")
        bytes[offset] = id
        bytes[offset + 1] = 0
        for (i, b) in body.enumerated() { bytes[offset + 2 + i] = b }
        if let writableBody { for (i, m) in writableBody.enumerated() { writable[offset + 2 + i] = m } }
        if let last = lastCapability { bytes[last + 1] = UInt8(offset) } else { bytes[PCIConfig.capabilitiesPointer] = UInt8(offset) }
        lastCapability = offset
        let status = get16(PCIConfig.status) | PCIConfig.statusCapabilities
        set16(PCIConfig.status, status)
        nextCapability = (offset + 2 + body.count + 3) & ~3
        return offset
    }

    // MARK: Guest access

    /// Reads `data.count` bytes at `offset`; past the 256 bytes (ECAM's extended space) reads 0.
    public func read(offset: Int, into data: UnsafeMutableRawBufferPointer) {
        for i in 0..<data.count {
            let at = offset + i
            data[i] = at >= 0 && at < PCIConfig.size ? bytes[at] : 0
        }
    }

    /// Writes the bits the mask allows; everything else is ignored.
    public mutating func write(offset: Int, data: UnsafeRawBufferPointer) {
        for i in 0..<data.count {
            let at = offset + i
            guard at >= 0 && at < PCIConfig.size else { continue }
            bytes[at] = (bytes[at] & ~writable[at]) | (data[i] & writable[at])
        }
    }

    // MARK: Reading state

    public var command: UInt16 { get16(PCIConfig.command) }

    /// The BARs decoded now: defined, enabled by the command register, and not mid-sizing
    /// (an all-ones register reads back the size mask, which is no placement).
    public var decodedBARs: [PCIBarMapping] {
        var out: [PCIBarMapping] = []
        for (index, bar) in bars.enumerated() {
            guard let bar else { continue }
            let enabled = bar.kind == .io ? command & PCIConfig.commandIO != 0 : command & PCIConfig.commandMemory != 0
            guard enabled else { continue }
            let address = UInt64(get32(PCIConfig.bar0 + 4 * index) & bar.addressMask)
            guard address != UInt64(bar.addressMask) else { continue }
            out.append(PCIBarMapping(index: index, kind: bar.kind, address: address, size: bar.size))
        }
        return out
    }

    /// Sets or clears the INTx status bit (read-only to the guest).
    public mutating func setInterruptStatus(_ on: Bool) {
        var s = get16(PCIConfig.status)
        s = on ? s | PCIConfig.statusInterrupt : s & ~PCIConfig.statusInterrupt
        set16(PCIConfig.status, s)
    }

    public func get8(_ offset: Int) -> UInt8 { bytes[offset] }
    public func get16(_ offset: Int) -> UInt16 { bytes.loadLittleEndian(at: offset)! }
    public func get32(_ offset: Int) -> UInt32 { bytes.loadLittleEndian(at: offset)! }
    /// Device-side stores (ignore the write mask).
    public mutating func set8(_ offset: Int, _ v: UInt8) { bytes[offset] = v }
    public mutating func set16(_ offset: Int, _ v: UInt16) { bytes.storeLittleEndian(v, at: offset) }
    public mutating func set32(_ offset: Int, _ v: UInt32) { bytes.storeLittleEndian(v, at: offset) }
    private mutating func setMask(_ offset: Int, _ mask: UInt32, width: Int) {
        for i in 0..<width { writable[offset + i] = UInt8(truncatingIfNeeded: mask >> (8 * UInt32(i))) }
    }
}
