/// Why a machine stopped, and the process exit status that reports it.
///
/// | status | meaning |
/// |---|---|
/// | 0 | the guest powered off (or a bare guest wrote 0 to the debug-exit port) |
/// | 1–255 | a bare guest wrote that byte to the debug-exit port |
/// | 32 | the guest rebooted (Apus does not restart guests) |
/// | 70 | the guest crashed: triple fault, failed entry, KVM internal error |
/// | 71 | Apus itself failed while the guest ran |
/// | 128+n | stopped by signal n (SIGINT, SIGTERM) |
public enum StopReason: Sendable, Equatable, CustomStringConvertible {
    case debugExit(UInt8)
    case powerOff
    case reboot
    case guestCrash(String)
    case vmmError(String)
    case signal(Int32)

    public static let rebootStatus: Int32 = 32
    public static let guestCrashStatus: Int32 = 70
    public static let vmmErrorStatus: Int32 = 71

    /// The status `apus` exits with.
    public var exitStatus: Int32 {
        switch self {
        case let .debugExit(code): Int32(code)
        case .powerOff: 0
        case .reboot: Self.rebootStatus
        case .guestCrash: Self.guestCrashStatus
        case .vmmError: Self.vmmErrorStatus
        case let .signal(n): 128 + n
        }
    }

    public var description: String {
        switch self {
        case let .debugExit(code): "guest wrote \(code) to the debug-exit port"
        case .powerOff: "guest powered off"
        case .reboot: "guest asked for a reboot"
        case let .guestCrash(why): "guest crashed: \(why)"
        case let .vmmError(why): "apus failed: \(why)"
        case let .signal(n): "stopped by signal \(n)"
        }
    }
}
