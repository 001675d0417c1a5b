import LinuxSupport

/// Failures opening or driving KVM, phrased so that a user knows what to do next.
public enum KVMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `/dev/kvm` does not exist.
    case deviceMissing(path: String)
    /// `/dev/kvm` exists but this user may not open it.
    case permissionDenied(path: String)
    /// The kernel speaks another KVM API version than the stable 12.
    case unsupportedAPIVersion(Int32)
    /// A capability Apus relies on is missing.
    case missingCapability(Capability)
    /// An ioctl or other system call failed.
    case system(SystemError)

    public var description: String {
        switch self {
        case let .deviceMissing(path):
            "\(path): no such device — load the kvm module (modprobe kvm-intel or kvm-amd) or run on a host with virtualization enabled"
        case let .permissionDenied(path):
            "\(path): permission denied — add yourself to the kvm group (sudo usermod -aG kvm $USER, then log in again)"
        case let .unsupportedAPIVersion(version):
            "KVM API version \(version) is not supported (Apus needs the stable API, version 12)"
        case let .missingCapability(cap):
            "this KVM lacks \(cap.name), which Apus needs — use a newer kernel"
        case let .system(error):
            error.description
        }
    }
}
