import Boot
import FuzzKit

/// The bzImage parser, the boot layout and the zero page built from the kernel's setup header:
/// every field of a `--kernel` file is the file's word.
///
/// Input: the initrd size (u32), the command line length (u16) and the end of low RAM in pages
/// (u32 with its top bits dropped: below 4 GiB, as Apus's low RAM is), then the kernel file.
///
/// Checked on success, as the loader relies on it: the kernel's load and working area, the
/// initrd and the command line all fit where the layout puts them, in low RAM, without overlap.
@_cdecl("LLVMFuzzerTestOneInput")
public func bzImageFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let initrdSize = Int(input.next(UInt32.self))
    let commandLineLength = Int(input.next(UInt16.self))
    let lowRAMEnd = UInt64(input.next(UInt32.self) & 0xF_FFFF) << 12
    let file = Array(input.take())

    guard let image = try? BzImage(file) else { return 0 }
    expect(image.setupHeader.count <= file.count - 0x1F1, "setup header longer than the file")
    _ = image.protocolDescription
    let params = BootParams(image: image)
    expect(params.bytes.count == 4096, "zero page of \(params.bytes.count) bytes")

    guard let layout = try? LinuxLayout(image: image, initrdSize: initrdSize, commandLineLength: commandLineLength,
                                        lowRAMEnd: lowRAMEnd) else { return 0 }
    let kernelEnd = layout.kernelAddress + UInt64(image.kernel.count)
    expect(commandLineLength <= Int(image.commandLineSize), "command line longer than the kernel accepts")
    expect(layout.entryPoint == layout.kernelAddress + LinuxLayout.entryOffset, "entry point moved")
    expect(kernelEnd <= layout.kernelWorkEnd && layout.kernelWorkEnd <= lowRAMEnd,
           "kernel [\(layout.kernelAddress), \(kernelEnd)) work end \(layout.kernelWorkEnd) past low RAM \(lowRAMEnd)")
    if initrdSize > 0 {
        let initrdEnd = layout.initrdAddress + UInt64(initrdSize)
        expect(layout.initrdAddress % 4096 == 0, "initrd not page-aligned")
        expect(layout.initrdAddress >= layout.kernelWorkEnd, "initrd overlaps the kernel's working area")
        expect(initrdEnd <= lowRAMEnd && initrdEnd <= UInt64(image.initrdAddressMax) + 1, "initrd past its limits")
        // The loader stores both in 32-bit boot_params fields.
        expect(UInt32(exactly: layout.initrdAddress) != nil && UInt32(exactly: initrdSize) != nil, "initrd beyond 4 GiB")
    }
    return 0
}
