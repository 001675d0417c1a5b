import Glibc

/// The default console sink: each byte the guest sends goes to stdout unbuffered.
public let standardOutputSink: @Sendable (UInt8) -> Void = { byte in
    var b = byte
    _ = write(1, &b, 1)
}
