import Glibc

/// Puts a terminal into raw mode while a guest owns it and restores it afterwards, so that
/// keys such as Ctrl-C reach the guest's shell instead of killing Apus.
public final class RawTerminal: @unchecked Sendable {
    private let fd: Int32
    private var saved = termios()
    private var active = false

    /// Switches `fd` to raw mode if it is a terminal; otherwise does nothing.
    public init(fd: Int32 = 0) {
        self.fd = fd
        guard isatty(fd) == 1, tcgetattr(fd, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        // Keep output post-processing so the host terminal still turns \n into \r\n.
        raw.c_oflag |= tcflag_t(OPOST | ONLCR)
        if tcsetattr(fd, TCSANOW, &raw) == 0 { active = true }
    }

    /// Restores the saved settings. Idempotent.
    public func restore() {
        guard active else { return }
        active = false
        tcsetattr(fd, TCSANOW, &saved)
    }

    deinit { restore() }
}
