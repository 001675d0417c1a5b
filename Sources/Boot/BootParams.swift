/// The zero page (`struct boot_params`, 4 KiB) that tells a 64-bit Linux entry where
/// everything is. Offsets from `arch/x86/include/uapi/asm/bootparam.h`.
public struct BootParams: Sendable {
    static let size = 4096
    static let acpiRSDPOffset = 0x070
    static let e820EntriesOffset = 0x1E8
    static let e820TableOffset = 0x2D0
    static let e820MaxEntries = 128
    static let typeOfLoaderOffset = 0x210
    static let loadFlagsOffset = 0x211
    static let ramdiskImageOffset = 0x218
    static let ramdiskSizeOffset = 0x21C
    static let heapEndPtrOffset = 0x224
    static let cmdLinePtrOffset = 0x228

    static let canUseHeap: UInt8 = 0x80
    static let undefinedLoader: UInt8 = 0xFF

    public private(set) var page = ByteWriter(count: BootParams.size)

    /// Starts from the kernel's own setup header (copied to 0x1F1, as the protocol asks; only
    /// the declared header bytes, so the 0xFF sentinel at 0x1EF stays zero).
    public init(image: BzImage) {
        page.set(image.setupHeader, at: BzImage.setupSectsOffset)
        page.set(Self.undefinedLoader, at: Self.typeOfLoaderOffset)
        let flags = page.get(UInt8.self, at: Self.loadFlagsOffset) | Self.canUseHeap
        page.set(flags, at: Self.loadFlagsOffset)
        page.set(UInt16(0xFE00), at: Self.heapEndPtrOffset)
    }

    public mutating func setCommandLine(address: UInt32) {
        page.set(address, at: Self.cmdLinePtrOffset)
    }

    public mutating func setInitrd(address: UInt32, size: UInt32) {
        page.set(address, at: Self.ramdiskImageOffset)
        page.set(size, at: Self.ramdiskSizeOffset)
    }

    public mutating func setACPIRSDP(_ address: UInt64) {
        page.set(address, at: Self.acpiRSDPOffset)
    }

    public mutating func setMemoryMap(_ entries: [E820Entry]) {
        let n = min(entries.count, Self.e820MaxEntries)
        page.set(UInt8(n), at: Self.e820EntriesOffset)
        for (i, e) in entries.prefix(n).enumerated() {
            let at = Self.e820TableOffset + i * 20
            page.set(e.address, at: at)
            page.set(e.size, at: at + 8)
            page.set(e.kind.rawValue, at: at + 16)
        }
    }

    public var bytes: [UInt8] { page.bytes }
}
