import Glibc
import LinuxSupport

/// What stands behind `/dev/kvm` on this host, as far as a guest can tell the difference.
///
/// A stock Linux kernel needs hardware virtualization (VMX or SVM) under KVM: on `kvm_pvm`, a
/// software virtualizer that runs 64-bit bare-metal code natively, Linux boots ~100× slowly and
/// then dies on an instruction the module cannot emulate. Knowing which case we are in lets
/// `apus run --kernel` say so up front instead of ending in a register dump.
public enum KVMBackend: Equatable, Sendable {
    /// The CPU has VMX (Intel) or SVM (AMD): any guest runs.
    case hardware(String)
    /// `kvm_pvm` is loaded and the CPU has neither: bare-metal 64-bit guests only.
    case pvm
    /// Neither flag nor a known software module (an unusual host).
    case unknown

    /// Looks at `/proc/cpuinfo` and `/sys/module`.
    public static func detect() -> KVMBackend {
        detect(cpuinfo: "/proc/cpuinfo", softwareModule: "/sys/module/kvm_pvm")
    }

    /// `detect` with the files to read named (for tests).
    public static func detect(cpuinfo: String, softwareModule: String) -> KVMBackend {
        let flags = (try? readWholeFile(cpuinfo)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        for line in flags.split(separator: "\n") where line.hasPrefix("flags") {
            let words = line.split(separator: " ")
            if words.contains("vmx") { return .hardware("vmx") }
            if words.contains("svm") { return .hardware("svm") }
            break
        }
        return access(softwareModule, F_OK) == 0 ? .pvm : .unknown
    }

    /// How messages name it.
    public var name: String {
        switch self {
        case let .hardware(flag): "hardware-backed (\(flag))"
        case .pvm: "kvm_pvm, a software virtualizer"
        case .unknown: "not hardware-backed (no vmx or svm in /proc/cpuinfo)"
        }
    }

    /// Whether a stock Linux kernel can be expected to boot.
    public var runsLinux: Bool {
        if case .hardware = self { return true }
        return false
    }
}
