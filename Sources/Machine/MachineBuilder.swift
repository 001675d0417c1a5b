import Devices
import LinuxSupport
import Virtio

/// The device I/O thread is the balloon's timer.
extension IOEventLoop: DeviceTimer {}

/// Which board a machine gets besides its core (vCPUs, RAM, COM1, boot timer).
public enum BoardKind: Sendable {
    /// For Linux: the ACPI power registers and the i8042 reset port.
    case linux
    /// For bare-metal test guests: the test board's probes and doorbells.
    case bare(TestBoard.InterruptDelivery = .irqfd)
}

extension Machine {
    /// Builds a whole board from `config`, in named steps:
    /// 0. the network taps, before anything else: a tap the user may not open is refused before
    ///    a VM exists;
    /// 1. `init`: the VM, its memory map, the in-kernel irqchip, the vCPUs, COM1, the boot timer;
    /// 2. `installPlatformDevices`: what the board kind adds (power and reset, or the test board);
    /// 3. `installVirtioDevices`: `config.devices`, each on `config.transport`.
    /// Nothing the guest sees is added later: loading a guest only writes memory.
    public static func assemble(_ config: MachineConfig, board: BoardKind) throws -> Machine {
        try config.validate()
        let taps = try openTaps(config)
        let machine = try Machine(config: config)
        try machine.installPlatformDevices(board)
        try machine.installVirtioDevices(taps: taps)
        try machine.installControlSocket()
        return machine
    }

    func installPlatformDevices(_ board: BoardKind) throws {
        switch board {
        case .linux: try installPowerDevices()
        case let .bare(delivery): testBoard = try installTestBoard(interrupts: delivery)
        }
    }

    /// The ACPI power registers, the power button (an irqfd on its GED's line) and the i8042
    /// reset port.
    func installPowerDevices() throws {
        let buttonLine = try interrupts.irqfd(gsi: MemoryMap.PowerPorts.powerButtonGSI)
        keep(buttonLine)
        powerButton = PowerButton(interrupt: buttonLine)
        let control = self.control
        try registerPIO(AcpiPowerDevice(onPowerOff: { control.requestStop(.powerOff) },
                                        onReset: { control.requestStop(.reboot) }),
                        port: MemoryMap.PowerPorts.base, length: AcpiPowerDevice.length)
        try registerPIO(I8042ResetPort(onReset: { control.requestStop(.reboot) }),
                        port: MemoryMap.PowerPorts.i8042Command, length: 1)
    }

    /// Builds each device's backend and attaches it; disks are named vda, vdb… in order.
    /// Each `--net`'s tap queues, in order: one per queue pair (IFF_MULTI_QUEUE when there are
    /// several).
    static func openTaps(_ config: MachineConfig) throws -> [[TapDevice]] {
        try config.devices.compactMap { spec -> [TapDevice]? in
            guard case let .net(net) = spec else { return nil }
            return try openTap(net)
        }
    }

    static func openTap(_ net: NetSpec) throws -> [TapDevice] {
        try (0..<net.queues).map { _ in try TapDevice(name: net.tap, multiQueue: net.queues > 1) }
    }

    func installVirtioDevices(taps: [[TapDevice]] = []) throws {
        var disks = 0, nics = 0
        for spec in config.devices {
            switch spec {
            case let .disk(path, readOnly):
                let backend = try FileBlockBackend(path: path, readOnly: readOnly)
                let name = "virtio-blk\(disks)"
                try addVirtio(VirtioBlock(name: name, backend: backend, serial: "apus-disk\(disks)", log: events.device(name)))
                disks += 1
            case .rng:
                try addVirtio(VirtioEntropy(log: events.device("virtio-rng")))
            case .console:
                let device = VirtioConsole(output: config.consoleBulkOutput, log: events.device("virtio-console"))
                try addVirtio(device)
                virtioConsole = device
            case let .net(net):
                let queues = nics < taps.count ? taps[nics] : try Self.openTap(net)
                let name = "virtio-net\(nics)"
                try addVirtio(VirtioNet(name: name, backends: queues, mac: net.mac ?? randomMAC(), vhost: net.vhost, log: events.device(name)))
                nics += 1
            case let .balloon(options):
                // The balloon schedules statistics timeouts and polls on its own I/O thread.
                let name = "virtio-balloon"
                let loop = try makeDeviceLoop(for: name)
                let device = VirtioBalloon(name: name, options: options, ramSize: memory.totalSize, timer: loop, log: events.device(name))
                try addVirtio(device, loop: loop)
                balloon = device
            }
        }
    }

    /// The control socket, when the config asks for one: created now, so that a path apus
    /// must not take is an error before any guest starts; served by `run`.
    func installControlSocket() throws {
        guard let path = config.controlSocketPath else { return }
        do {
            controlServer = try ControlServer(path: path)
        } catch {
            throw MachineError("--control \(error)")
        }
    }
}

/// A random locally administered unicast MAC address in QEMU's 52:54:00 range, which is what
/// tools and people recognise as a virtual machine's.
func randomMAC() -> [UInt8] {
    var tail: [UInt8] = [0, 0, 0]
    _ = tail.withUnsafeMutableBytes { fillRandom($0.baseAddress!, count: 3) }
    return [0x52, 0x54, 0x00] + tail
}
