import Glibc
import LinuxSupport
import Testing

/// `RawTerminal` on a pseudo-terminal: the restore that runs in a fatal-signal handler (one
/// async-signal-safe ioctl) gives back exactly the settings raw mode replaced. The handler
/// itself runs in `apus` child processes, in ApusKVMTests' `TerminalRestoreTests`.
@Suite(.serialized) struct RawTerminalTests {
    static func settings(_ fd: Int32) -> termios {
        var t = termios()
        tcgetattr(fd, &t)
        return t
    }

    static func same(_ a: termios, _ b: termios) -> Bool {
        var a = a, b = b
        let cc = withUnsafeBytes(of: &a.c_cc) { Array($0) } == withUnsafeBytes(of: &b.c_cc) { Array($0) }
        return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag && a.c_lflag == b.c_lflag && cc
    }

    @Test func theFatalSignalRestoreGivesBackTheSettingsRawModeReplaced() throws {
        let pty = try PseudoTerminal()
        let slave = pty.slave
        let before = Self.settings(slave)
        #expect(before.c_lflag & tcflag_t(ICANON | ECHO) != 0, "a new pty starts in canonical mode with echo")

        let terminal = RawTerminal(fd: slave)
        #expect(terminal.isRaw)
        let raw = Self.settings(slave)
        #expect(raw.c_lflag & tcflag_t(ICANON | ECHO | ISIG) == 0)
        #expect(raw.c_oflag & tcflag_t(OPOST) != 0, "output post-processing stays on")

        #expect(FatalSignals.restoreTerminalNow(), "the handler's restore finds the saved settings")
        #expect(Self.same(Self.settings(slave), before))

        // The ordinary restore also tells the handler there is nothing left to restore.
        terminal.restore()
        #expect(Self.same(Self.settings(slave), before))
        #expect(!FatalSignals.restoreTerminalNow())
    }

    @Test func aDescriptorThatIsNoTerminalIsLeftAlone() {
        let fd = open("/dev/null", O_RDWR)
        defer { close(fd) }
        let terminal = RawTerminal(fd: fd)
        #expect(!terminal.isRaw)
        #expect(!FatalSignals.restoreTerminalNow())
    }
}
