import Glibc
import LinuxSupport
import Testing

/// `apus run` on a pseudo-terminal, killed while the terminal is raw: by a seccomp violation,
/// by fatal signals (with seccomp on and off), by Ctrl-A x (the normal way out). Each time the
/// terminal must be back in the mode it was in before, and apus must end as the signal says.
///
/// The guest is a stand-in bzImage whose 64-bit entry point halts forever (a Linux kernel
/// cannot boot on every /dev/kvm): apus switches the terminal to raw mode only for a kernel.
@Suite(.serialized) struct TerminalRestoreTests {
    /// A bzImage header the loader accepts, with `hlt; jmp .-1` at the 64-bit entry point.
    static func haltingKernel() throws -> String {
        var image = [UInt8](repeating: 0, count: 2 * 512 + 4096)
        func put(_ value: UInt64, at offset: Int, size: Int) {
            for i in 0..<size { image[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        put(1, at: 0x1F1, size: 1)                   // setup_sects
        put(0xAA55, at: 0x1FE, size: 2)
        put(0x6A, at: 0x201, size: 1)                // the header's length
        put(0x5372_6448, at: 0x202, size: 4)         // "HdrS"
        put(0x020F, at: 0x206, size: 2)              // boot protocol 2.15
        put(1, at: 0x211, size: 1)                   // LOADED_HIGH
        put(0x37FF_FFFF, at: 0x22C, size: 4)         // initrd_addr_max
        put(0x20_0000, at: 0x230, size: 4)           // kernel_alignment
        put(1, at: 0x234, size: 1)                   // relocatable
        put(1, at: 0x236, size: 2)                   // XLF_KERNEL_64
        put(2047, at: 0x238, size: 4)                // cmdline_size
        put(0x100_0000, at: 0x258, size: 8)          // pref_address
        put(0x200_0000, at: 0x260, size: 4)          // init_size
        image.replaceSubrange(1024 + 0x200..<1024 + 0x203, with: [0xF4, 0xEB, 0xFD])  // startup_64
        var template = Array("/tmp/apus-kernel-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0)
        defer { close(fd) }
        try image.withUnsafeBytes { try writeAll(fd, $0) }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func settings(_ fd: Int32) -> termios {
        var t = termios()
        tcgetattr(fd, &t)
        return t
    }

    static func isRaw(_ fd: Int32) -> Bool { settings(fd).c_lflag & tcflag_t(ICANON) == 0 }

    /// Whether every thread of process `pid` runs under a seccomp filter (the main thread is
    /// confined last, but a vCPU thread may still be on its way to its filter then).
    static func allConfined(_ pid: pid_t) -> Bool {
        guard let dir = opendir("/proc/\(pid)/task") else { return false }
        defer { closedir(dir) }
        var tasks = 0
        while let entry = readdir(dir) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard tid.first?.isNumber == true else { continue }
            let status = (try? readWholeFile("/proc/\(pid)/task/\(tid)/status")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            guard status.contains("Seccomp:\t2") else { return false }
            tasks += 1
        }
        return tasks > 1
    }

    enum Ending: CustomStringConvertible {
        case seccompViolation
        case signal(Int32, seccomp: Bool)
        case quitKeys

        var description: String {
            switch self {
            case .seccompViolation: "a seccomp violation"
            case let .signal(s, seccomp): "signal \(s) with seccomp \(seccomp ? "on" : "off")"
            case .quitKeys: "Ctrl-A x"
            }
        }
    }

    @Test(arguments: [
        Ending.seccompViolation, .signal(SIGSEGV, seccomp: true), .signal(SIGABRT, seccomp: true),
        .signal(SIGBUS, seccomp: true), .signal(SIGQUIT, seccomp: true), .signal(SIGSEGV, seccomp: false),
        .signal(SIGABRT, seccomp: false), .quitKeys,
    ])
    func theTerminalIsRestored(_ ending: Ending) throws {
        guard KVMTestSupport.kvmAvailable(), let apus = ApusProcess.executable() else { return }
        let kernel = try Self.haltingKernel()
        defer { unlink(kernel) }
        let pty = try PseudoTerminal()
        let before = Self.settings(pty.slave)
        try #require(!Self.isRaw(pty.slave))

        var arguments = ["run", "--kernel", kernel, "--memory", "64M"]
        switch ending {
        case .seccompViolation: arguments += ["--seccomp-probe", "main"]
        case let .signal(_, seccomp): arguments += ["--seccomp", seccomp ? "on" : "off"]
        case .quitKeys: break
        }
        let child = try ApusProcess.Child(apus, arguments, stdin: pty.slave)
        if case .seccompViolation = ending {} else {
            let deadline = MonotonicClock.now() + 20
            while !Self.isRaw(pty.slave) && MonotonicClock.now() < deadline { usleep(10_000) }
            #expect(Self.isRaw(pty.slave), "apus put the terminal in raw mode")
            if case .signal(_, seccomp: false) = ending {
                usleep(200_000)  // the guest runs
            } else {
                while !Self.allConfined(child.pid) && MonotonicClock.now() < deadline { usleep(10_000) }
                #expect(Self.allConfined(child.pid), "every thread confined before the signal")
            }
        }
        switch ending {
        case .seccompViolation: break
        case let .signal(s, _): kill(child.pid, s)
        case .quitKeys: _ = write(pty.master, "\u{01}x", 2)
        }
        let outcome = child.wait()
        let after = Self.settings(pty.slave)

        let expectedStatus: Int32
        switch ending {
        case .seccompViolation: expectedStatus = 128 + SIGSYS
        case let .signal(s, _): expectedStatus = 128 + s
        case .quitKeys: expectedStatus = 128 + SIGINT
        }
        #expect(outcome.status == expectedStatus, "\(outcome.standardError)")
        #expect(after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag && after.c_oflag == before.c_oflag,
                "the terminal is back as it was after \(ending)")
        if case let .signal(_, seccomp) = ending {
            #expect(outcome.standardError.contains("terminal restored"), "\(outcome.standardError)")
            if seccomp { #expect(outcome.standardError.contains("in thread"), "the report names the confined thread: \(outcome.standardError)") }
        }
    }
}
