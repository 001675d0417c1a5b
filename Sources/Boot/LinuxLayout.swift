/// Where a Linux boot puts the kernel, initrd and command line in guest RAM, and the checks
/// that everything fits — done before any byte is written, so bad input starts no guest.
public struct LinuxLayout: Sendable, Equatable {
    /// The protected-mode kernel is loaded here; the 64-bit entry is 0x200 past it.
    public static let kernelLoadAddress: UInt64 = 0x10_0000
    public static let entryOffset: UInt64 = 0x200

    public let kernelAddress: UInt64
    public let entryPoint: UInt64
    public let initrdAddress: UInt64
    public let initrdSize: UInt64
    /// End of the region the decompressor works in (the initrd must stay above it).
    public let kernelWorkEnd: UInt64

    /// - Parameters:
    ///   - lowRAMEnd: end of RAM below 4 GiB.
    public init(image: BzImage, initrdSize: Int, commandLineLength: Int, lowRAMEnd: UInt64) throws(BootError) {
        guard commandLineLength <= Int(image.commandLineSize) else {
            throw .commandLineTooLong(length: commandLineLength, limit: Int(image.commandLineSize))
        }
        kernelAddress = Self.kernelLoadAddress
        entryPoint = kernelAddress + Self.entryOffset
        // The decompressor runs the kernel at max(aligned load address, pref_address) and needs
        // init_size bytes there.
        let alignment = UInt64(max(image.kernelAlignment, 0x1000))
        let aligned = (kernelAddress + alignment - 1) / alignment * alignment
        // Every header field is the file's word, not ours: pref_address may lie anywhere in
        // 64 bits, so the sums are checked.
        let runAddress = max(aligned, image.preferredAddress)
        let loadedEnd = kernelAddress + UInt64(image.kernel.count)
        let (runEnd, overflow) = runAddress.addingReportingOverflow(UInt64(image.initSize))
        guard !overflow else { throw .kernelOutOfRange(preferredAddress: image.preferredAddress, initSize: image.initSize) }
        kernelWorkEnd = max(runEnd, loadedEnd)
        guard kernelWorkEnd <= lowRAMEnd else {
            if runAddress >= 1 << 32 {  // Apus's guest RAM for the kernel lies below 4 GiB
                throw .kernelOutOfRange(preferredAddress: image.preferredAddress, initSize: image.initSize)
            }
            throw .memoryTooSmall(needed: kernelWorkEnd + UInt64(initrdSize), available: lowRAMEnd)
        }
        self.initrdSize = UInt64(initrdSize)
        if initrdSize == 0 {
            initrdAddress = 0
            return
        }
        // As high as allowed: below the kernel's limit and the end of low RAM, page-aligned.
        let limit = min(UInt64(image.initrdAddressMax) + 1, lowRAMEnd)
        guard UInt64(initrdSize) <= limit else { throw .initrdTooLarge(size: initrdSize) }
        let address = (limit - UInt64(initrdSize)) & ~0xFFF
        guard address >= kernelWorkEnd else {
            throw .memoryTooSmall(needed: kernelWorkEnd + UInt64(initrdSize) + 0x1000, available: lowRAMEnd)
        }
        initrdAddress = address
    }
}
