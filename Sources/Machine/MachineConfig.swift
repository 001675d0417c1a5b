import LinuxSupport

/// What a machine is built from: sizes, switches and the devices to attach. The CLI only turns
/// options into one of these; `validate` is the one place that says what is allowed, and
/// `Machine.assemble` builds the board from it.
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
    /// How virtio devices attach to the board. virtio-pci by default: with MSI-X a completion
    /// costs no exit (virtio-mmio's costs two: InterruptStatus and InterruptACK), and Linux
    /// finds it with or without ACPI (docs/linux-benchmarks.md has the figures).
    public var transport: VirtioTransport = .pci
    /// Where virtio-pci doorbells live.
    public var notify: NotifyMethod = .mmio
    /// The virtio devices, in the order they are attached (slot order, /dev/vda before /dev/vdb).
    public var devices: [DeviceSpec] = []
    /// Where a virtio console's output goes, in pieces (one write(2) each).
    public var consoleBulkOutput: @Sendable (UnsafeRawBufferPointer) -> Void = { _ in }
    /// Where log lines go (guest-triggered ones once per device and cause: `GuestEventLog`).
    public var log: @Sendable (String) -> Void = { fputsError("apus: \($0)") }
    /// Whether `run` confines its threads with seccomp allow-lists (see `ThreadSandbox`).
    public var seccomp = SeccompSettings()
    /// Where to create the control socket (`--control`), if anywhere: served while the
    /// machine runs, removed when it stops.
    public var controlSocketPath: String?

    public init() {}

    /// The smallest RAM Apus accepts: the boot structures live in the first MiB and a guest
    /// needs room above it.
    public static let minimumMemory: UInt64 = 2 << 20

    /// Refuses a configuration no board can be built from, with a message for the user.
    /// (Limits that depend on the host, like KVM's vCPU maximum, are checked when building.)
    public func validate() throws(MachineError) {
        guard cpus >= 1 else { throw MachineError("--cpus must be at least 1") }
        guard memorySize >= Self.minimumMemory, memorySize % (2 << 20) == 0 else {
            throw MachineError("--memory must be a multiple of 2 MiB and at least 2M")
        }
        if notify == .pio && !transport.isPCI {
            throw MachineError("--notify pio needs a PCI transport (--transport pci or pci-transitional): virtio-mmio has one doorbell register in its MMIO window")
        }
        let limit = transport.isPCI ? Self.maxPCIDevices : MemoryMap.VirtioMMIOSlots.count
        if devices.count > limit {
            throw MachineError("\(devices.count) virtio devices: at most \(limit) fit on \(transport.isPCI ? "PCI bus 0" : "the virtio-mmio slots")")
        }
        if devices.filter({ $0 == .console }).count > 1 { throw MachineError("only one virtio console") }
    }

    /// Bus 0 has 32 slots; the host bridge takes one.
    public static let maxPCIDevices = 31
}

/// A virtio device to attach.
public enum DeviceSpec: Sendable, Equatable {
    /// virtio-blk on a raw image file or block device (locked: exclusively unless read-only).
    case disk(path: String, readOnly: Bool)
    /// virtio-rng, fed by getrandom(2).
    case rng
    /// virtio-console (hvc0), its output to `MachineConfig.consoleBulkOutput`.
    case console
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
