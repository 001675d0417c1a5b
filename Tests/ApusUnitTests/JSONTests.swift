import JSON
import Testing

/// The control protocol's JSON: what the strict parser accepts, what it refuses and where,
/// its limits, and that the writer's text parses back.
@Suite struct JSONTests {
    let parser = JSONParser()

    @Test func parsesEveryKindOfValue() throws {
        let v = try parser.parse(#" {"a": [1, -2.5e3, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "o": {}} "#)
        let number = try parser.parse("-2.5e3")
        #expect(v["a"] == .array([.integer(1), number, .bool(true), .bool(false), .null]))
        #expect(v["s"]?.string == "x\"\\/\u{08}\u{0C}\n\r\té😀")
        #expect(v["o"] == .object([]))
        #expect(v["a"]?.array?[1].double == -2500)
    }

    @Test func integersAreExact() throws {
        #expect(try parser.parse("18446744073709551615").uint64 == UInt64.max)
        #expect(try parser.parse("-9223372036854775808").int64 == Int64.min)
        #expect(try parser.parse("1.0").uint64 == nil)
        #expect(try parser.parse("-1").uint64 == nil)
    }

    @Test(arguments: [
        ("", "end of input"), ("{", "expected a member name"), ("{\"a\":1,}", "expected a member name"),
        ("[1,]", "expected a value"), ("01", "leading zero"), ("1.", "digit after '.'"), ("1e", "exponent"),
        ("+1", "expected a value"), ("'a'", "expected a value"), ("{\"a\" 1}", "expected ':'"),
        ("\"abc", "never ends"), ("\"a\u{01}\"", "control character"), ("\"\\x\"", "unknown escape"),
        ("\"\\ud800\"", "lone UTF-16 surrogate"), ("\"\\udc00\"", "lone UTF-16 surrogate"), ("\"\\u12\"", "four hex digits"),
        ("{\"a\":1,\"a\":2}", "appears twice"), ("1 2", "after the value"), ("tru", "unexpected"), ("nul", "unexpected"),
        ("// c\n1", "expected a value"), ("[1] x", "after the value"),
    ])
    func refusesMalformedInput(text: String, why: String) {
        #expect {
            try parser.parse(text)
        } throws: { error in
            (error as? JSONError)?.message.contains(why) == true
        }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONError.self) { try parser.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONError.self) { try parser.parse([0x22, 0xC3, 0x22]) }
    }

    @Test func errorsSayWhere() {
        #expect(throws: JSONError("unexpected ']', expected a value", offset: 3)) { try parser.parse("[1,]") }
    }

    @Test func limitsHold() throws {
        let small = JSONParser(limits: .init(maxBytes: 16, maxDepth: 3, maxNumberLength: 5))
        #expect(throws: JSONError.self) { try small.parse(String(repeating: " ", count: 17)) }
        #expect(try small.parse("[[[1]]]") == .array([.array([.array([.integer(1)])])]))
        #expect { try small.parse("[[[[1]]]]") } throws: { ($0 as? JSONError)?.message.contains("nested deeper") == true }
        #expect { try small.parse("123456") } throws: { ($0 as? JSONError)?.message.contains("longer than 5") == true }
        // Deep nesting at the default limits fails cleanly instead of exhausting the stack.
        #expect(throws: JSONError.self) { try parser.parse(String(repeating: "[", count: 10_000)) }
    }

    @Test func writerRoundTripsOnOneLine() throws {
        let value = JSONValue.object([
            "ok": .bool(true), "n": .integer(UInt64.max), "neg": .integer(-5),
            "s": .string("line\nbreak \"quoted\" \\ \u{01} \u{7F} é"), "a": .array([.null, .object([])]),
        ])
        let text = value.serialized
        #expect(!text.contains("\n"))
        #expect(text.hasPrefix(#"{"ok":true,"n":18446744073709551615,"neg":-5,"s":"line\nbreak \"quoted\" \\ \u0001 \u007f é""#))
        #expect(try parser.parse(text) == value)
    }

    @Test func membersKeepTheirOrder() throws {
        let v = try parser.parse(#"{"z":1,"a":2}"#)
        #expect(v.members?.map(\.0) == ["z", "a"])
        #expect(v.serialized == #"{"z":1,"a":2}"#)
    }
}
