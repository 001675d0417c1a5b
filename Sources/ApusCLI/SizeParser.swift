/// Parses a memory size as users write it: `512M`, `2G`, `1536MiB`, `65536K`, or plain bytes.
///
/// Suffixes are binary (K = 1024). Zero, negative, fractional and overflowing values are refused.
public func parseSize(_ text: String) throws(SizeError) -> UInt64 {
    let trimmed = text.trimmingSpaces()
    var digits = Substring(trimmed)
    var unit = ""
    while let last = digits.last, last.isLetter {
        unit = String(last) + unit
        digits = digits.dropLast()
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else {
        throw SizeError(text: text)
    }
    let shift: UInt64
    switch unit.uppercased() {
    case "", "B": shift = 0
    case "K", "KB", "KIB": shift = 10
    case "M", "MB", "MIB": shift = 20
    case "G", "GB", "GIB": shift = 30
    case "T", "TB", "TIB": shift = 40
    default: throw SizeError(text: text)
    }
    let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
    guard !overflow, bytes > 0 else { throw SizeError(text: text) }
    return bytes
}

/// A size that `parseSize` could not read.
public struct SizeError: Error, CustomStringConvertible, Equatable {
    public let text: String
    public var description: String {
        "'\(text)' is not a size: use a positive number with an optional K, M, G or T suffix, such as 512M or 2G"
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
