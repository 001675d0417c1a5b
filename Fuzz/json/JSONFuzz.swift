import FuzzKit
import JSON

/// `JSONParser` with the control socket's limits, on any bytes (what a client may send).
///
/// Checked on success: the value written back is one line (the protocol is newline-delimited)
/// and parses to an equal value, and writing that again gives the same text.
@_cdecl("LLVMFuzzerTestOneInput")
public func jsonFuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let bytes = input.take()
    let parser = JSONParser(limits: .init(maxBytes: 4096, maxDepth: 8))
    guard let value = try? parser.parse(bytes) else { return 0 }
    let text = value.serialized
    expect(!text.utf8.contains(0x0A), "serialized JSON has a newline: \(text)")
    let again = try? JSONParser(limits: .init(maxBytes: 1 << 20, maxDepth: 8)).parse(text)
    expect(again == value, "\(text) does not parse back to the same value")
    expect(again?.serialized == text, "\(text) is not written the same way twice")
    return 0
}
