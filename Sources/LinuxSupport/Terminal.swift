import CKVM
import CFatalSignal
import Glibc

/// Puts a terminal into raw mode while a guest owns it and restores it afterwards, so that
/// keys such as Ctrl-C reach the guest's shell instead of killing Apus.
///
/// The terminal is given back on every way out: `restore()` on the normal path, an `atexit`
/// hook for any `exit`, and `FatalSignals`' handler when apus dies of a signal (a crash, an
/// abort, a seccomp violation). Only SIGKILL and SIGSTOP leave it raw.
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
        // Remembered before the switch: a signal in between finds the settings to put back.
        apus_fatal_remember_terminal(fd, &saved)
        FatalSignals.install()
        if tcsetattr(fd, TCSANOW, &raw) == 0 {
            active = true
        } else {
            apus_fatal_forget_terminal()
        }
    }

    /// Whether the terminal is in raw mode now (false when `fd` is not a terminal).
    public var isRaw: Bool { active }

    /// Restores the saved settings. Idempotent.
    public func restore() {
        guard active else { return }
        active = false
        // One ioctl(TCSETS), the call every seccomp allow-list has (see apus_terminal_apply).
        _ = apus_terminal_apply(fd, &saved)
        apus_fatal_forget_terminal()
    }

    deinit { restore() }
}

/// A new pseudo-terminal pair (`/dev/ptmx`), for giving a program a terminal it can switch
/// to raw mode without a person at a keyboard: the tests of `RawTerminal` and of the
/// fatal-signal restore use it.
public struct PseudoTerminal: ~Copyable {
    /// The side a terminal emulator would hold.
    public let master: Int32
    /// The side the program sees as its terminal.
    public let slave: Int32

    public init() throws(SystemError) {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        if master < 0 { throw .current("open /dev/ptmx") }
        var unlock: Int32 = 0
        // TIOCSPTLCK (unlock the slave), then TIOCGPTPEER (open it): <asm-generic/ioctls.h>.
        let slave = apus_ioctl_ptr(master, 0x4004_5431, &unlock) == 0
            ? apus_ioctl_int(master, 0x5441, UInt(O_RDWR | O_NOCTTY | O_CLOEXEC)) : -1
        if slave < 0 {
            let e = errno
            close(master)
            throw SystemError("open the pty slave", errno: e)
        }
        self.master = master
        self.slave = slave
    }

    deinit {
        close(slave)
        close(master)
    }
}
