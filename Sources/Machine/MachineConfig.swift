/// What a machine is built from: sizes and switches that do not depend on what it boots.
public struct MachineConfig: Sendable {
    /// Number of vCPUs (each gets a thread).
    public var cpus: Int = 1
    /// Guest RAM in bytes (a multiple of 2 MiB).
    public var memorySize: UInt64 = 256 << 20
    /// Print one line per userspace exit (`--trace exits`).
    public var traceExits = false
    /// Where the guest's serial output goes.
    public var consoleOutput: @Sendable (UInt8) -> Void = standardOutputSink
    /// The KVM device.
    public var kvmPath = "/dev/kvm"

    public init() {}

    /// The smallest RAM Apus accepts: the boot structures live in the first MiB and a guest
    /// needs room above it.
    public static let minimumMemory: UInt64 = 2 << 20
}

/// A configuration or setup problem, phrased for the user.
public struct MachineError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
