import ByteOrder

/// A tiny ACPI Machine Language writer: just the terms Apus's DSDT needs (names, packages,
/// integers, strings, scopes, devices, resource templates). ACPI 6.x §20.
public enum AML {
    static let zeroOp: UInt8 = 0x00, oneOp: UInt8 = 0x01
    static let nameOp: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0A, wordPrefix: UInt8 = 0x0B, dwordPrefix: UInt8 = 0x0C
    static let stringPrefix: UInt8 = 0x0D, qwordPrefix: UInt8 = 0x0E
    static let scopeOp: UInt8 = 0x10, bufferOp: UInt8 = 0x11, packageOp: UInt8 = 0x12
    static let extOpPrefix: UInt8 = 0x5B, deviceOp: UInt8 = 0x82
    static let methodOp: UInt8 = 0x14, notifyOp: UInt8 = 0x86

    /// PkgLength (§20.2.4): encodes `contentLength` plus the length field itself, in 1–4 bytes.
    public static func packageLength(_ contentLength: Int) -> [UInt8] {
        // The encoded length includes its own bytes, so pick the size that fits.
        if contentLength + 1 < 0x40 { return [UInt8(contentLength + 1)] }
        for size in 2...4 {
            let total = contentLength + size
            if total < 1 << (4 + 8 * (size - 1)) {
                var out = [UInt8(size - 1) << 6 | UInt8(total & 0x0F)]
                for i in 0..<(size - 1) { out.append(UInt8((total >> (4 + 8 * i)) & 0xFF)) }
                return out
            }
        }
        preconditionFailure("AML package too large")
    }

    /// A name segment: 4 characters, padded with `_` (`S5` → `_S5_` is written by callers as "_S5").
    public static func nameSegment(_ name: String) -> [UInt8] {
        var bytes = Array(name.utf8.prefix(4))
        while bytes.count < 4 { bytes.append(UInt8(ascii: "_")) }
        return bytes
    }

    /// A name path: `\_SB_` style root paths and dotted multi-segment names.
    public static func namePath(_ path: String) -> [UInt8] {
        var out: [UInt8] = []
        var rest = Substring(path)
        if rest.first == "\\" { out.append(0x5C); rest = rest.dropFirst() }
        let segments = rest.split(separator: ".")
        switch segments.count {
        case 0: out.append(0x00)
        case 1: break
        case 2: out.append(0x2E)  // DualNamePrefix
        default: out.append(0x2F); out.append(UInt8(segments.count))  // MultiNamePrefix
        }
        for s in segments { out += nameSegment(String(s)) }
        return out
    }

    /// The shortest integer encoding.
    public static func integer(_ v: UInt64) -> [UInt8] {
        switch v {
        case 0: [zeroOp]
        case 1: [oneOp]
        case ...0xFF: [bytePrefix, UInt8(v)]
        case ...0xFFFF: [wordPrefix] + le(UInt16(v))
        case ...0xFFFF_FFFF: [dwordPrefix] + le(UInt32(v))
        default: [qwordPrefix] + le(v)
        }
    }

    public static func string(_ s: String) -> [UInt8] { [stringPrefix] + Array(s.utf8) + [0] }

    /// `Name(path, value)`.
    public static func name(_ path: String, _ value: [UInt8]) -> [UInt8] { [nameOp] + namePath(path) + value }

    /// `Package() { elements }`.
    public static func package(_ elements: [[UInt8]]) -> [UInt8] {
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return [packageOp] + packageLength(body.count) + body
    }

    /// `Scope(path) { terms }`.
    public static func scope(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = namePath(path) + terms.flatMap { $0 }
        return [scopeOp] + packageLength(body.count) + body
    }

    /// `Device(name) { terms }`.
    public static func device(_ name: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = namePath(name) + terms.flatMap { $0 }
        return [extOpPrefix, deviceOp] + packageLength(body.count) + body
    }

    /// `Method(name, argumentCount, NotSerialized) { terms }`.
    public static func method(_ name: String, arguments: UInt8, _ terms: [[UInt8]]) -> [UInt8] {
        precondition(arguments <= 7)
        let body = namePath(name) + [arguments] + terms.flatMap { $0 }
        return [methodOp] + packageLength(body.count) + body
    }

    /// `Notify(path, value)`: tells the OS about an event on the device at `path` (0x80 on a
    /// button device: it was pressed).
    public static func notify(_ path: String, _ value: UInt64) -> [UInt8] {
        [notifyOp] + namePath(path) + integer(value)
    }

    /// A compressed EISA ID such as `PNP0A08` (§19.3.4): three letters in 5-bit groups, then
    /// four hex digits, stored big-endian as a DWord.
    public static func eisaID(_ id: String) -> [UInt8] {
        let c = Array(id.utf8)
        precondition(c.count == 7)
        func letter(_ x: UInt8) -> UInt32 { UInt32(x - 0x40) & 0x1F }
        func hexDigit(_ x: UInt8) -> UInt32 { UInt32(Int(String(UnicodeScalar(x)), radix: 16)!) }
        let v = (letter(c[0]) << 26) | (letter(c[1]) << 21) | (letter(c[2]) << 16)
            | (hexDigit(c[3]) << 12) | (hexDigit(c[4]) << 8) | (hexDigit(c[5]) << 4) | hexDigit(c[6])
        return [dwordPrefix] + le(v.byteSwapped)
    }

    /// `ResourceTemplate() { descriptors }`: a Buffer holding the descriptors and an End Tag.
    public static func resourceTemplate(_ descriptors: [[UInt8]]) -> [UInt8] {
        var data = descriptors.flatMap { $0 }
        data += [0x79, 0x00]  // End Tag, checksum 0 ("treat as summing to zero")
        let body = integer(UInt64(data.count)) + data
        return [bufferOp] + packageLength(body.count) + body
    }

    /// Memory32Fixed(ReadWrite, base, length).
    public static func memory32Fixed(base: UInt32, length: UInt32) -> [UInt8] {
        [0x86, 0x09, 0x00, 0x01] + le(base) + le(length)
    }

    /// IO(Decode16, min, min, 1, length).
    public static func io(port: UInt16, length: UInt8) -> [UInt8] {
        [0x47, 0x01] + le(port) + le(port) + [0x01, length]
    }

    /// Interrupt(ResourceConsumer, Edge/Level, ActiveHigh, Exclusive) { gsi }.
    public static func interrupt(_ gsi: UInt32, edge: Bool = true) -> [UInt8] {
        // Flags: bit 0 consumer, bit 1 edge-triggered, bit 2 active-low (0), bit 3 shared (0).
        [0x89, 0x06, 0x00, UInt8(0x01 | (edge ? 0x02 : 0)), 0x01] + le(gsi)
    }

    /// Address-space resource types and flags (ACPI 6.4 §6.4.3.5).
    enum AddressSpace: UInt8 { case memory = 0, io = 1, busNumber = 2 }
    /// General flags of a window the bridge produces: fixed minimum and maximum, positive decode.
    static let producerFixedWindow: UInt8 = 0x0C

    /// WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, first, last, 0, count).
    public static func wordBusNumber(first: UInt16, last: UInt16) -> [UInt8] {
        wordAddress(.busNumber, typeFlags: 0, min: first, max: last)
    }

    /// WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, length).
    public static func wordIO(min: UInt16, max: UInt16) -> [UInt8] {
        wordAddress(.io, typeFlags: 0x03, min: min, max: max)
    }

    static func wordAddress(_ type: AddressSpace, typeFlags: UInt8, min: UInt16, max: UInt16) -> [UInt8] {
        [0x88] + le(UInt16(13)) + [type.rawValue, producerFixedWindow, typeFlags]
            + le(UInt16(0)) + le(min) + le(max) + le(UInt16(0)) + le(UInt16(max - min + 1))
    }

    /// DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, …).
    public static func dwordMemory(base: UInt32, size: UInt32) -> [UInt8] {
        [0x87] + le(UInt16(23)) + [AddressSpace.memory.rawValue, producerFixedWindow, 0x01]
            + le(UInt32(0)) + le(base) + le(base + (size - 1)) + le(UInt32(0)) + le(size)
    }

    /// QWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, …).
    public static func qwordMemory(base: UInt64, size: UInt64) -> [UInt8] {
        [0x8A] + le(UInt16(43)) + [AddressSpace.memory.rawValue, producerFixedWindow, 0x01]
            + le(UInt64(0)) + le(base) + le(base + (size - 1)) + le(UInt64(0)) + le(size)
    }

    /// A `_PRT` entry with a static GSI: `Package { 0xSSSSFFFF, pin, 0, gsi }` — any function of
    /// device `slot`, interrupt pin `pin` (0 = INTA#), wired to global system interrupt `gsi`.
    public static func pciRoute(slot: UInt8, pin: UInt8, gsi: UInt32) -> [UInt8] {
        package([integer(UInt64(slot) << 16 | 0xFFFF), integer(UInt64(pin)), integer(0), integer(UInt64(gsi))])
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { [UInt8](littleEndian: v) }
}
