import ApusCLI
import FuzzKit

/// `parseSize`, which reads `--memory` and the other size options: any bytes, as UTF-8.
///
/// Checked on success: the size is positive, and printed as plain bytes it parses back to
/// itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func sizeParserFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let text = String(decoding: input.take(), as: UTF8.self)
    guard let size = try? parseSize(text) else { return 0 }
    expect(size > 0, "parseSize(\(text)) = 0")
    expect((try? parseSize(String(size))) == size, "parseSize(\(text)) = \(size) does not parse back")
    return 0
}
