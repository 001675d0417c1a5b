/// One guest access to a register file, decoded from the input.
public struct Access {
    public var isWrite: Bool
    /// Which register file, BAR or bus the access goes to; each harness maps it onto its own.
    public var space: Int
    public var offset: UInt64
    /// 1, 2, 4 or 8 bytes.
    public var size: Int
    /// What a write stores (the low `size` bytes).
    public var value: UInt64

    /// Runs `body` with the access's bytes: the value for a write, a zeroed buffer for a read.
    public func withBuffer<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        var v = isWrite ? value : 0
        return withUnsafeMutableBytes(of: &v) { body(UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
    }
}

/// A step of a register-file script: an access, or the guest storing 8 bytes in its RAM (to
/// build rings and requests between register writes).
public enum Step {
    case access(Access)
    case ram(address: UInt64, value: UInt64)
}

/// Decodes a script. Each step is an op byte — bit 0 write, bits 1–2 the size (1, 2, 4, 8),
/// bits 3–7 the space (31 = a RAM store) — then `offsetBytes` bytes of offset, then the value
/// (`size` bytes for a write, 8 for a RAM store). At most `limit` steps, so every input runs
/// in bounded time.
public func decodeScript(_ input: inout FuzzInput, offsetBytes: Int, limit: Int = 256) -> [Step] {
    var steps: [Step] = []
    while !input.isEmpty && steps.count < limit {
        let op: UInt8 = input.next()
        let size = 1 << Int((op >> 1) & 3)
        let space = Int(op >> 3)
        let offset = input.next(bytes: offsetBytes)
        if space == 31 {
            steps.append(.ram(address: offset, value: input.next()))
        } else {
            let isWrite = op & 1 != 0
            steps.append(.access(Access(isWrite: isWrite, space: space, offset: offset, size: size,
                                        value: isWrite ? input.next(bytes: size) : 0)))
        }
    }
    return steps
}

/// A failed invariant: crash, so libFuzzer records the input.
public func expect(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                   file: StaticString = #file, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}
