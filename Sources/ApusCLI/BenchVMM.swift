import ArgumentParser

/// A VMM that `apus bench boot`, `blk` and `net` boot the benchmark guest under. Every one
/// gets the same kernel, initramfs, command line, vCPUs, RAM and disk image; only the VMM (and
/// what it brings: firmware, device model, transport) differs. Apus appears once per transport,
/// so that a table can tell what the VMM costs from what its transport costs.
enum BenchVMM: String, CaseIterable, ExpressibleByArgument {
    /// apus itself (this executable), virtio-mmio described in ACPI.
    case apusMMIO = "apus-mmio"
    /// apus with virtio-pci (MSI-X), its doorbells in a memory BAR (KVM's fast MMIO path).
    case apusPCI = "apus-pci"
    /// apus with virtio-pci, its doorbells in an I/O BAR (an OUT instruction per kick).
    case apusPCIPIO = "apus-pci-pio"
    /// QEMU's minimal machine: no PCI, virtio-mmio described in ACPI, SeaBIOS's microvm build as
    /// firmware (what microvm loads when ACPI is on, its default).
    case qemuMicrovm = "qemu-microvm"
    /// QEMU's PC machine: SeaBIOS, PCIe, virtio-pci.
    case qemuQ35 = "qemu-q35"

    /// `apus`, the name of apus's only column before virtio-pci, still names its virtio-mmio one
    /// so that older command lines keep working.
    init?(argument: String) {
        self.init(rawValue: argument == "apus" ? BenchVMM.apusMMIO.rawValue : argument)
    }

    /// How the guest reaches the virtio disk under this VMM.
    var transport: String {
        switch self {
        case .apusMMIO, .qemuMicrovm: "virtio-mmio"
        // QEMU's modern virtio-pci puts its notify structure in a memory BAR too (its
        // modern-pio-notify property is off by default), and Linux's driver uses the modern
        // interface when offered, so q35 is the QEMU twin of apus-pci.
        case .apusPCI, .qemuQ35: "virtio-pci (MMIO notify)"
        case .apusPCIPIO: "virtio-pci (PIO notify)"
        }
    }

    var isApus: Bool {
        switch self {
        case .apusMMIO, .apusPCI, .apusPCIPIO: true
        case .qemuMicrovm, .qemuQ35: false
        }
    }
}

/// What every VMM in a comparison boots.
struct BenchGuest {
    var kernel: String
    var initrd: String
    var commandLine: String
    var cpus: Int
    var memoryMiB: UInt64
    /// A raw image attached as the guest's first virtio-blk disk (/dev/vda), or nil.
    var disk: String?
    /// A virtio-net NIC on a host tap (`apus bench net`), or nil.
    var net: BenchNet?
}

/// The guest's NIC in `apus bench net`: every VMM attaches it to the same tap, which exists
/// before the first boot with its host end configured, and gives it the same MAC, so the host's
/// neighbour cache stays right when the VMMs take turns.
struct BenchNet {
    var tap: String
    var mac = "52:54:00:12:34:56"
}

/// Where QEMU and its firmware are.
struct QEMUSetup {
    /// The qemu-system-x86_64 executable (a bare name is looked up in PATH).
    var binary = "qemu-system-x86_64"
    /// A directory for QEMU's `-L` (firmware: bios-256k.bin, bios-microvm.bin, linuxboot_dma.bin…),
    /// or nil for QEMU's built-in search path.
    var firmware: String?
}

extension BenchVMM {
    /// The program and arguments that boot `guest` with its serial console (COM1) on stdout.
    /// `vhost` hands the NIC's data path to the kernel's vhost-net (only with `guest.net`).
    func command(for guest: BenchGuest, apus: String, qemu: QEMUSetup, vhost: Bool = false) -> (path: String, arguments: [String]) {
        switch self {
        case .apusMMIO, .apusPCI, .apusPCIPIO:
            var arguments = ["run", "--kernel", guest.kernel, "--initrd", guest.initrd, "--cmdline", guest.commandLine,
                             "--cpus", String(guest.cpus), "--memory", "\(guest.memoryMiB)M", "--console", "stdio"]
            // Always spelled out, the default too: a column must keep measuring its transport
            // when apus's default transport changes.
            switch self {
            case .apusPCI: arguments += ["--transport", "pci", "--notify", "mmio"]
            case .apusPCIPIO: arguments += ["--transport", "pci", "--notify", "pio"]
            default: arguments += ["--transport", "mmio"]
            }
            if let disk = guest.disk { arguments += ["--disk", "path=\(disk)"] }
            // vhost=off spelled out too, for the same reason as the transport.
            if let net = guest.net { arguments += ["--net", "tap=\(net.tap),mac=\(net.mac),vhost=\(vhost ? "on" : "off")"] }
            return (apus, arguments)
        case .qemuMicrovm, .qemuQ35:
            let machine = self == .qemuMicrovm ? "microvm" : "q35"
            let blockDevice = self == .qemuMicrovm ? "virtio-blk-device" : "virtio-blk-pci"
            // -nodefaults: no VGA, NIC or other default devices, so both machines carry only
            // what apus offers too. -no-reboot: a reboot (panic=-1) ends QEMU as it ends apus.
            var arguments = ["-M", machine, "-accel", "kvm", "-cpu", "host",
                             "-smp", String(guest.cpus), "-m", "\(guest.memoryMiB)M",
                             "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
                             "-kernel", guest.kernel, "-initrd", guest.initrd, "-append", guest.commandLine]
            if let firmware = qemu.firmware { arguments = ["-L", firmware] + arguments }
            if let disk = guest.disk {
                arguments += ["-drive", "id=disk0,file=\(disk),format=raw,if=none",
                              "-device", "\(blockDevice),drive=disk0"]
            }
            if let net = guest.net {
                // script=no: the tap exists and is configured already, as for apus. romfile=:
                // no iPXE option ROM, which the guest never uses and apus does not load either.
                let nic = self == .qemuMicrovm ? "virtio-net-device,netdev=n0,mac=\(net.mac)" : "virtio-net-pci,netdev=n0,mac=\(net.mac),romfile="
                arguments += ["-netdev", "tap,id=n0,ifname=\(net.tap),script=no,downscript=no,vhost=\(vhost ? "on" : "off")",
                              "-device", nic]
            }
            return (qemu.binary, arguments)
        }
    }
}
