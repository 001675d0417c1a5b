/// A PCI function's address: bus, device (slot) and function number — `00:03.0` in lspci.
public struct PCIAddress: Sendable, Hashable, CustomStringConvertible {
    public var bus: UInt8
    public var device: UInt8
    public var function: UInt8

    public init(bus: UInt8 = 0, device: UInt8, function: UInt8 = 0) {
        self.bus = bus
        self.device = device & 0x1F
        self.function = function & 0x7
    }

    /// The `devfn` byte Linux and the ACPI `_ADR`/MP-table encodings build on.
    public var devfn: UInt8 { device << 3 | function }

    public var description: String {
        func hex2(_ v: UInt8) -> String { (v < 16 ? "0" : "") + String(v, radix: 16) }
        return "\(hex2(bus)):\(hex2(device)).\(function)"
    }
}

/// Standard configuration-space offsets of a type-0 header (PCI Local Bus 3.0 §6.1).
public enum PCIConfig {
    public static let vendorID = 0x00, deviceID = 0x02, command = 0x04, status = 0x06
    public static let revisionID = 0x08, classCode = 0x09, cacheLineSize = 0x0C, latencyTimer = 0x0D
    public static let headerType = 0x0E, bar0 = 0x10, subsystemVendorID = 0x2C, subsystemID = 0x2E
    public static let expansionROM = 0x30, capabilitiesPointer = 0x34, interruptLine = 0x3C, interruptPin = 0x3D
    /// The legacy configuration space every mechanism reaches; ECAM adds up to 4 KiB.
    public static let size = 256
    public static let extendedSize = 4096

    /// Command register bits.
    public static let commandIO: UInt16 = 1 << 0, commandMemory: UInt16 = 1 << 1
    public static let commandBusMaster: UInt16 = 1 << 2, commandINTxDisable: UInt16 = 1 << 10
    /// Status register bits.
    public static let statusInterrupt: UInt16 = 1 << 3, statusCapabilities: UInt16 = 1 << 4

    /// The name of a header register, for `--trace exits`.
    public static func registerName(_ offset: Int) -> String? {
        switch offset {
        case 0x00, 0x01: "VENDOR_ID"
        case 0x02, 0x03: "DEVICE_ID"
        case 0x04, 0x05: "COMMAND"
        case 0x06, 0x07: "STATUS"
        case 0x08: "REVISION_ID"
        case 0x09...0x0B: "CLASS"
        case 0x0C: "CACHE_LINE_SIZE"
        case 0x0D: "LATENCY_TIMER"
        case 0x0E: "HEADER_TYPE"
        case 0x0F: "BIST"
        case 0x10...0x27: "BAR\((offset - 0x10) / 4)"
        case 0x2C, 0x2D: "SUBSYSTEM_VENDOR_ID"
        case 0x2E, 0x2F: "SUBSYSTEM_ID"
        case 0x30...0x33: "ROM_ADDRESS"
        case 0x34: "CAPABILITY_LIST"
        case 0x3C: "INTERRUPT_LINE"
        case 0x3D: "INTERRUPT_PIN"
        default: nil
        }
    }
}
