/// A strict JSON parser (RFC 8259) for untrusted input: whatever arrives on the control socket.
///
/// Strict means it accepts exactly the grammar — no comments, trailing commas, single quotes,
/// leading zeros, bare control characters in strings, lone surrogates, invalid UTF-8 or
/// duplicate object keys — and it is bounded: the input length, the nesting depth and each
/// number's length have limits, so no input makes it recurse deeply or allocate much more than
/// the input itself. Errors say what was wrong and where (a byte offset).
public struct JSONParser: Sendable {
    /// The limits a parse is held to.
    public struct Limits: Sendable {
        /// Bytes of input, whitespace included.
        public var maxBytes: Int
        /// Arrays and objects inside each other; the top level is depth 1.
        public var maxDepth: Int
        /// Characters of one number literal.
        public var maxNumberLength: Int

        public init(maxBytes: Int = 64 * 1024, maxDepth: Int = 32, maxNumberLength: Int = 64) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
            self.maxNumberLength = maxNumberLength
        }
    }

    public let limits: Limits

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Parses one JSON text: a single value, with optional whitespace around it.
    public func parse<Bytes: Collection>(_ input: Bytes) throws(JSONError) -> JSONValue where Bytes.Element == UInt8 {
        guard input.count <= limits.maxBytes else {
            throw JSONError("the request is \(input.count) bytes; at most \(limits.maxBytes) are accepted", offset: limits.maxBytes)
        }
        var reader = Reader(bytes: Array(input), limits: limits)
        reader.skipWhitespace()
        let value = try reader.value(depth: 1)
        reader.skipWhitespace()
        guard reader.atEnd else { throw reader.error("unexpected \(reader.describeCurrent()) after the value") }
        return value
    }

    /// Parses UTF-8 text.
    public func parse(_ text: String) throws(JSONError) -> JSONValue { try parse(Array(text.utf8)) }
}

/// What was wrong with a JSON text, and at which byte.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    /// Byte offset into the input where the problem was found.
    public let offset: Int

    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) (at byte \(offset))" }
}

/// The cursor over the input. One instance per parse; recursion depth is bounded by
/// `limits.maxDepth`.
private struct Reader {
    let bytes: [UInt8]
    let limits: JSONParser.Limits
    var index = 0

    init(bytes: [UInt8], limits: JSONParser.Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    var atEnd: Bool { index >= bytes.count }
    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    func error(_ message: String) -> JSONError { JSONError(message, offset: index) }

    func describeCurrent() -> String {
        guard let c = current else { return "end of input" }
        if c >= 0x21 && c < 0x7F { return "'\(Character(UnicodeScalar(c)))'" }
        return "byte 0x\(String(c, radix: 16))"
    }

    mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { index += 1 }
    }

    mutating func expect(_ literal: StaticString, _ value: JSONValue) throws(JSONError) -> JSONValue {
        let start = index
        for b in UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount) {
            guard current == b else {
                index = start
                throw error("unexpected \(describeCurrent())")
            }
            index += 1
        }
        return value
    }

    mutating func value(depth: Int) throws(JSONError) -> JSONValue {
        guard let c = current else { throw error("unexpected end of input, expected a value") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected \(describeCurrent()), expected a value")
        }
    }

    mutating func enter(_ depth: Int) throws(JSONError) {
        guard depth <= limits.maxDepth else { throw error("nested deeper than \(limits.maxDepth) levels") }
    }

    mutating func object(depth: Int) throws(JSONError) -> JSONValue {
        try enter(depth)
        index += 1  // {
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("unexpected \(describeCurrent()), expected a member name in quotes") }
            let keyOffset = index
            let key = try string()
            if members.contains(where: { $0.0 == key }) {
                throw JSONError("the member \"\(key)\" appears twice", offset: keyOffset)
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("unexpected \(describeCurrent()), expected ':'") }
            index += 1
            skipWhitespace()
            members.append((key, try value(depth: depth + 1)))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw error("unexpected \(describeCurrent()), expected ',' or '}'")
            }
        }
    }

    mutating func array(depth: Int) throws(JSONError) -> JSONValue {
        try enter(depth)
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw error("unexpected \(describeCurrent()), expected ',' or ']'")
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    mutating func number() throws(JSONError) -> JSONNumber {
        let start = index
        func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        if current == UInt8(ascii: "-") { index += 1 }
        guard isDigit(current) else { throw error("a number needs a digit here") }
        if current == UInt8(ascii: "0") {
            index += 1
            if isDigit(current) { throw error("a number cannot have a leading zero") }
        } else {
            while isDigit(current) { index += 1 }
        }
        if current == UInt8(ascii: ".") {
            index += 1
            guard isDigit(current) else { throw error("a number needs a digit after '.'") }
            while isDigit(current) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard isDigit(current) else { throw error("a number needs a digit in its exponent") }
            while isDigit(current) { index += 1 }
        }
        guard index - start <= limits.maxNumberLength else {
            throw JSONError("a number longer than \(limits.maxNumberLength) characters", offset: start)
        }
        return JSONNumber(validatedText: String(decoding: bytes[start..<index], as: UTF8.self))
    }

    /// A string literal, with its escapes decoded; the raw bytes must be valid UTF-8.
    mutating func string() throws(JSONError) -> String {
        let start = index
        index += 1  // "
        var out: [UInt8] = []
        while true {
            guard let c = current else { throw JSONError("a string that never ends", offset: start) }
            switch c {
            case UInt8(ascii: "\""):
                index += 1
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw JSONError("a string that is not valid UTF-8", offset: start)
                }
                return s
            case UInt8(ascii: "\\"):
                index += 1
                try escape(into: &out)
            case 0..<0x20:
                throw error("a control character (byte 0x\(String(c, radix: 16))) in a string must be escaped")
            default:
                out.append(c)
                index += 1
            }
        }
    }

    mutating func escape(into out: inout [UInt8]) throws(JSONError) {
        guard let c = current else { throw error("unexpected end of input in an escape") }
        index += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                    throw error("a lone UTF-16 surrogate in a \\u escape")
                }
                index += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("a lone UTF-16 surrogate in a \\u escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw error("a lone UTF-16 surrogate in a \\u escape")
            }
            out.append(contentsOf: String(Character(UnicodeScalar(scalar)!)).utf8)
        default:
            index -= 1
            throw error("unknown escape '\\\(describeCurrent())'")
        }
    }

    mutating func hex4() throws(JSONError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = current else { throw error("unexpected end of input in a \\u escape") }
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - 0x61 + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - 0x41 + 10)
            default: throw error("a \\u escape needs four hex digits")
            }
            v = v << 4 | digit
            index += 1
        }
        return v
    }
}
