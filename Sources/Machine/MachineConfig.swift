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
    /// How virtio devices attach to the board.
    public var transport: VirtioTransport = .mmio
    /// Where virtio-pci doorbells live.
    public var notify: NotifyMethod = .mmio

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

/// How virtio devices attach to the board (`--transport`).
public enum VirtioTransport: String, Sendable, CaseIterable {
    /// virtio-mmio version 2, described in the DSDT.
    case mmio
    /// virtio-mmio version 1, the legacy interface (guest page numbers, no FEATURES_OK).
    case mmioLegacy = "mmio-legacy"
    /// virtio-pci, modern (1.0) device IDs and capabilities only.
    case pci
    /// virtio-pci transitional: the legacy I/O header in BAR0 and the modern capabilities.
    case pciTransitional = "pci-transitional"

    public var isPCI: Bool { self == .pci || self == .pciTransitional }
}

/// Where virtio-pci puts its notify structure (`--notify`): the doorbell the guest writes to
/// kick a queue, caught by an ioeventfd either way.
public enum NotifyMethod: String, Sendable, CaseIterable {
    /// Memory BAR, zero-length ioeventfd: KVM's fast MMIO path (no instruction decode).
    case mmio
    /// I/O BAR, port ioeventfd: an OUT instruction, as legacy virtio-pci did.
    case pio
}
