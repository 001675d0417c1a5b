/// A JSON value (RFC 8259), as the control socket exchanges them.
///
/// Objects keep their members in order (replies read the way they were written) and never hold
/// a key twice: the parser refuses duplicates rather than guess which one counts. Numbers keep
/// their literal text, so a 64-bit counter goes through unrounded; `uint64`/`int64` read an
/// integer literal exactly, `double` any number.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// An integer value.
    public static func integer<T: BinaryInteger>(_ value: T) -> JSONValue { .number(JSONNumber(value)) }

    /// An object from key-value pairs, in this order (the keys must differ).
    public static func object(_ members: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(members.map { ($0.key, $0.value) })
    }

    /// The member named `key` of an object (nil for other values or a missing key).
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    public var string: String? { if case let .string(s) = self { s } else { nil } }
    public var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var uint64: UInt64? { if case let .number(n) = self { n.uint64 } else { nil } }
    public var int64: Int64? { if case let .number(n) = self { n.int64 } else { nil } }
    public var double: Double? { if case let .number(n) = self { n.double } else { nil } }
    public var array: [JSONValue]? { if case let .array(a) = self { a } else { nil } }
    /// The members of an object, in order.
    public var members: [(String, JSONValue)]? { if case let .object(m) = self { m } else { nil } }

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }
}

/// A JSON number as written: its text follows the JSON grammar (checked by the parser or made
/// from an integer), and is read back exactly when it is an integer.
public struct JSONNumber: Sendable, Equatable, CustomStringConvertible {
    /// The literal, e.g. `-12`, `3.5e2`.
    public let text: String

    public init<T: BinaryInteger>(_ value: T) { text = String(value) }

    /// `text` must already follow the JSON number grammar (the parser checks it).
    init(validatedText text: String) { self.text = text }

    /// The value when the literal is a non-negative integer that fits (no fraction, no exponent).
    public var uint64: UInt64? { UInt64(text) }
    /// The value when the literal is an integer that fits.
    public var int64: Int64? { Int64(text) }
    /// The nearest double (any literal).
    public var double: Double? { Double(text) }

    public var description: String { text }
}
