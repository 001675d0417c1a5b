/// A Linux bzImage, checked against the x86 boot protocol (`Documentation/arch/x86/boot.rst`)
/// well enough to enter it through the 64-bit entry point.
public struct BzImage: Sendable {
    // Setup-header offsets (identical in the file and in boot_params).
    static let setupSectsOffset = 0x1F1
    static let bootFlagOffset = 0x1FE
    static let headerMagicOffset = 0x202
    static let versionOffset = 0x206
    static let loadFlagsOffset = 0x211
    static let initrdAddrMaxOffset = 0x22C
    static let kernelAlignmentOffset = 0x230
    static let relocatableOffset = 0x234
    static let xloadflagsOffset = 0x236
    static let cmdlineSizeOffset = 0x238
    static let prefAddressOffset = 0x258
    static let initSizeOffset = 0x260

    static let headerMagic: UInt32 = 0x5372_6448   // "HdrS"
    static let loadedHigh: UInt8 = 0x01
    static let xlfKernel64: UInt16 = 0x01
    /// 2.12 introduced xloadflags, which tells whether the 64-bit entry exists.
    public static let minimumProtocol: UInt16 = 0x020C

    /// Setup header bytes, from 0x1F1 up to the end the header declares (to copy into boot_params).
    public let setupHeader: [UInt8]
    /// The protected-mode kernel (everything after the real-mode setup sectors).
    public let kernel: ArraySlice<UInt8>
    public let protocolVersion: UInt16
    public let initrdAddressMax: UInt32
    public let kernelAlignment: UInt32
    public let relocatable: Bool
    /// Longest command line the kernel accepts, without the terminating NUL.
    public let commandLineSize: UInt32
    /// Where the kernel prefers to run (it decompresses itself there), and how much it needs there.
    public let preferredAddress: UInt64
    public let initSize: UInt32

    public init(_ bytes: [UInt8]) throws(BootError) {
        guard bytes.count >= 0x270,
              readLE(bytes, Self.bootFlagOffset, as: UInt16.self) == 0xAA55,
              readLE(bytes, Self.headerMagicOffset, as: UInt32.self) == Self.headerMagic else {
            throw .notABzImage
        }
        let version = readLE(bytes, Self.versionOffset, as: UInt16.self)!
        guard version >= Self.minimumProtocol else { throw .protocolTooOld(version) }
        let xloadflags = readLE(bytes, Self.xloadflagsOffset, as: UInt16.self)!
        guard xloadflags & Self.xlfKernel64 != 0 else { throw .no64BitEntry }
        guard bytes[Self.loadFlagsOffset] & Self.loadedHigh != 0 else { throw .notLoadedHigh }

        var setupSects = Int(bytes[Self.setupSectsOffset])
        if setupSects == 0 { setupSects = 4 }
        let kernelOffset = (setupSects + 1) * 512
        guard kernelOffset < bytes.count else { throw .truncated }
        // The header ends at 0x202 + the byte at 0x201 (the jump's displacement).
        let headerEnd = min(0x202 + Int(bytes[0x201]), bytes.count)
        setupHeader = Array(bytes[Self.setupSectsOffset..<headerEnd])
        kernel = bytes[kernelOffset...]
        protocolVersion = version
        initrdAddressMax = readLE(bytes, Self.initrdAddrMaxOffset)!
        kernelAlignment = readLE(bytes, Self.kernelAlignmentOffset)!
        relocatable = bytes[Self.relocatableOffset] != 0
        commandLineSize = readLE(bytes, Self.cmdlineSizeOffset)!
        preferredAddress = readLE(bytes, Self.prefAddressOffset)!
        initSize = readLE(bytes, Self.initSizeOffset)!
    }

    /// The version as `2.15`.
    public var protocolDescription: String { "\(protocolVersion >> 8).\(String(protocolVersion & 0xFF, radix: 16))" }
}

/// Why a kernel or its boot setup was refused.
public enum BootError: Error, Equatable, Sendable, CustomStringConvertible {
    case notABzImage
    case protocolTooOld(UInt16)
    case no64BitEntry
    case notLoadedHigh
    case truncated
    case commandLineTooLong(length: Int, limit: Int)
    case memoryTooSmall(needed: UInt64, available: UInt64)
    case initrdTooLarge(size: Int)
    case kernelOutOfRange(preferredAddress: UInt64, initSize: UInt32)

    public var description: String {
        switch self {
        case .notABzImage: "not a Linux bzImage (no boot sector signature or no \"HdrS\" header)"
        case let .protocolTooOld(v): "the kernel speaks boot protocol \(v >> 8).\(v & 0xFF); Apus needs 2.12 or newer (64-bit entry)"
        case .no64BitEntry: "the kernel has no 64-bit entry point (XLF_KERNEL_64 is not set)"
        case .notLoadedHigh: "the kernel cannot be loaded at 1 MiB (LOADED_HIGH is not set)"
        case .truncated: "the kernel image is truncated"
        case let .commandLineTooLong(length, limit): "the command line is \(length) bytes; this kernel accepts at most \(limit)"
        case let .memoryTooSmall(needed, available):
            "guest memory is too small: the kernel and initrd need \(needed >> 20) MiB, --memory gives \(available >> 20) MiB"
        case let .initrdTooLarge(size): "the initrd (\(size >> 20) MiB) does not fit below the kernel's initrd limit"
        case let .kernelOutOfRange(address, initSize):
            "the kernel asks to run at 0x\(String(address, radix: 16)) with \(initSize >> 20) MiB of working space, outside guest RAM below 4 GiB (a corrupt or hostile header?)"
        }
    }
}
