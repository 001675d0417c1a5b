import CKVM
import CSeccomp
import Glibc

/// A seccomp allow-list for one thread, compiled to BPF by libseccomp.
///
/// Filters are per thread: `apply()` confines the thread that calls it (and any thread it
/// starts later, which inherits the filter), never the others. So it never asks for
/// `SECCOMP_FILTER_FLAG_TSYNC`, which would copy the caller's filter onto every thread of the
/// process: each kind of apus thread has a list of its own. A filter cannot be removed, and a
/// second one only narrows the first (the kernel runs both and takes the stricter answer).
public struct SeccompFilter: Sendable {
    /// What a system call outside the list gets.
    public enum Violation: Sendable, Equatable {
        /// SIGSYS (`SECCOMP_RET_TRAP`): `FatalSignals` names the call and the thread on stderr,
        /// restores the terminal, and the process dies of SIGSYS. The call itself never runs.
        case trap
        /// The call fails with this `errno` and the thread goes on (`SECCOMP_RET_ERRNO`; tests).
        case fail(errno: Int32)
    }

    /// A test on one argument of a call: `(argument & mask) == value`.
    public struct Condition: Sendable, Hashable, CustomStringConvertible {
        /// 0 to 5.
        public let argument: UInt32
        public let mask: UInt64
        public let value: UInt64

        /// The low 32 bits of `argument` equal `value`. Descriptors, ioctl requests and PIDs are
        /// 32-bit in the kernel, which ignores the upper half of the register; so must the
        /// filter, or a caller's leftover upper bits would turn an allowed call into a violation.
        public static func equals(_ argument: UInt32, _ value: UInt32) -> Condition {
            Condition(argument: argument, mask: 0xFFFF_FFFF, value: UInt64(value))
        }

        /// None of `bits` is set in `argument` (e.g. no `PROT_EXEC` in mmap's protection).
        public static func hasNone(_ argument: UInt32, of bits: UInt64) -> Condition {
            Condition(argument: argument, mask: bits, value: 0)
        }

        public var description: String {
            mask == 0xFFFF_FFFF ? "arg\(argument) == 0x\(String(value, radix: 16))"
                : value == 0 ? "arg\(argument) & 0x\(String(mask, radix: 16)) == 0"
                : "arg\(argument) & 0x\(String(mask, radix: 16)) == 0x\(String(value, radix: 16))"
        }
    }

    /// One allowed call: `syscall` when every condition holds (rules for one call add up).
    public struct Rule: Sendable, Hashable {
        public let syscall: String
        public let conditions: [Condition]
    }

    /// Names the thread in violation reports, e.g. "apus-vcpu0 (vcpu filter)".
    public let label: String
    public let violation: Violation
    public private(set) var rules: [Rule] = []

    public init(label: String, violation: Violation = .trap) {
        self.label = label
        self.violation = violation
    }

    /// Allows `syscall` (a name as in `<asm/unistd_64.h>`, e.g. "pwritev") when every one of
    /// `conditions` holds; with none, always.
    public mutating func allow(_ syscall: String, _ conditions: Condition...) {
        let rule = Rule(syscall: syscall, conditions: conditions)
        if !rules.contains(rule) { rules.append(rule) }
    }

    /// Allows each of `syscalls` unconditionally.
    public mutating func allow(_ syscalls: [String]) {
        for s in syscalls { allow(s) }
    }

    /// Whether `syscall` is allowed by some rule (whatever its conditions).
    public func allows(_ syscall: String) -> Bool { rules.contains { $0.syscall == syscall } }

    /// Confines the calling thread for the rest of its life. Throws (and confines nothing) if a
    /// name is unknown or the kernel refuses the filter.
    public func apply() throws(SystemError) {
        let defaultAction: UInt32
        switch violation {
        case .trap: defaultAction = SCMP_ACT_TRAP
        case let .fail(errno): defaultAction = apus_scmp_act_errno(UInt16(truncatingIfNeeded: errno))
        }
        guard let context = seccomp_init(defaultAction) else { throw SystemError("seccomp_init", errno: ENOMEM) }
        defer { seccomp_release(context) }
        // A call through another ABI (int 0x80, x32) is not on any list: kill, no report.
        var rc = seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)
        if rc < 0 { throw SystemError("seccomp: bad-architecture action", errno: -rc) }
        for rule in rules {
            let number = seccomp_syscall_resolve_name(rule.syscall)
            guard number >= 0 else { throw SystemError("seccomp: unknown system call \(rule.syscall)", errno: EINVAL) }
            var comparisons = rule.conditions.map {
                scmp_arg_cmp(arg: $0.argument, op: SCMP_CMP_MASKED_EQ, datum_a: $0.mask, datum_b: $0.value)
            }
            rc = comparisons.withUnsafeMutableBufferPointer {
                seccomp_rule_add_array(context, SCMP_ACT_ALLOW, number, UInt32($0.count), $0.baseAddress)
            }
            if rc < 0 { throw SystemError("seccomp: rule for \(rule.syscall) \(rule.conditions)", errno: -rc) }
        }
        // The report needs the handler, the names and the label before the first violation.
        FatalSignals.install()
        _ = Self.syscallNamesForReports
        _ = Self.noThreadHeapTrimming
        SanitizerRuntime.prepareForSandbox()
        rc = seccomp_load(context)
        if rc < 0 { throw SystemError("seccomp: load the \(label) filter", errno: -rc) }
        FatalSignals.labelCurrentThread(label)
        FatalSignals.markCurrentThreadConfined()
    }

    /// glibc's malloc opens /proc/sys/vm/overcommit_memory the first time it shrinks the heap
    /// of a thread's arena (`check_may_shrink_heap`, after a thread freed more than the trim
    /// threshold at the top of its heap): on a confined thread that `openat` is a violation —
    /// the control thread met it freeing a slow client's replies. So heaps are never trimmed:
    /// with the threshold at its maximum, `heap_trim` returns before `shrink_heap`, process-wide,
    /// set once before the first filter. Freed memory stays in its arena for reuse (the main
    /// arena no longer gives its top back with `sbrk` either); guest RAM is separate mappings.
    private static let noThreadHeapTrimming: Void = {
        _ = apus_disable_heap_trimming()
    }()

    /// Hands every system call name to the fatal-signal handler, once per process.
    private static let syscallNamesForReports: Void = {
        for number in Int32(0)..<512 {
            guard let name = seccomp_syscall_resolve_num_arch(UInt32(SCMP_ARCH_NATIVE), number) else { continue }
            FatalSignals.nameSyscall(number, String(cString: name))
            free(name)
        }
    }()
}
