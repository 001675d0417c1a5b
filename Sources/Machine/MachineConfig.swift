import Devices
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
        var taps = Set<String>()
        for case let .net(net) in devices {
            guard taps.insert(net.tap).inserted else { throw MachineError("--net: tap \(net.tap) is used twice") }
            if !(1...16).contains(net.queues) { throw MachineError("--net queues=\(net.queues): 1 to 16 queue pairs") }
        }
        let balloons = devices.compactMap { if case let .balloon(options) = $0 { options } else { nil } }
        if balloons.count > 1 { throw MachineError("only one --balloon") }
        if let b = balloons.first {
            if b.initialTarget > memorySize {
                throw MachineError("--balloon size=\(b.initialTarget >> 20)M is more than the guest's --memory (\(memorySize >> 20)M)")
            }
            if let s = b.statisticsInterval, s < 1 || s > 86_400 {
                throw MachineError("--balloon stats=\(s): the interval is 1 to 86400 seconds")
            }
        }
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
    /// virtio-net on a tap interface.
    case net(NetSpec)
    /// virtio-balloon (at most one), driven through `Machine.balloon`.
    case balloon(BalloonOptions)
}

/// A network interface: virtio-net on a Linux tap (`--net`).
public struct NetSpec: Sendable, Equatable {
    /// The tap to attach to (created when it does not exist, which needs CAP_NET_ADMIN).
    public var tap: String
    /// The guest's MAC address; nil: a random locally administered one (52:54:00:xx:xx:xx).
    public var mac: [UInt8]?
    /// Whether the kernel's vhost-net carries the data path.
    public var vhost = false
    /// Queue pairs (each with its own tap queue).
    public var queues = 1

    public init(tap: String, mac: [UInt8]? = nil, vhost: Bool = false, queues: Int = 1) {
        self.tap = tap
        self.mac = mac
        self.vhost = vhost
        self.queues = queues
    }
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
