import Glibc

/// Writes `text` to descriptor `fd` in one `write` where possible, so lines written by
/// different threads do not interleave (and no stdio buffer or lock is involved).
public func writeText(_ text: String, to fd: Int32) {
    var copy = text
    copy.withUTF8 { bytes in
        try? writeAll(fd, UnsafeRawBufferPointer(bytes))
    }
}

/// Writes one line to stderr (diagnostics, progress, errors).
public func fputsError(_ line: String) {
    writeText(line + "\n", to: 2)
}
