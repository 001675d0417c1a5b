import ArgumentParser

/// One column of a Linux benchmark report: a VMM and, for `apus bench net`, where its virtio-net
/// frames move — in the VMM's own userspace, or in the kernel's vhost-net (`-vhost` columns).
/// `apus bench boot` and `blk` have no network: their columns are the VMMs alone.
struct BenchColumn: Hashable, ExpressibleByArgument {
    let vmm: BenchVMM
    /// The NIC's data path is the kernel's vhost-net (`vhost=on`, apus's and QEMU's spelling).
    let vhost: Bool

    init(_ vmm: BenchVMM, vhost: Bool = false) {
        self.vmm = vmm
        self.vhost = vhost
    }

    /// A column name as the reports print it: a VMM (`apus` for apus-mmio too), `-vhost` appended
    /// for the vhost-net data path, e.g. `qemu-q35-vhost`.
    init?(argument: String) {
        let vhost = argument.hasSuffix("-vhost")
        guard let vmm = BenchVMM(argument: vhost ? String(argument.dropLast("-vhost".count)) : argument) else { return nil }
        self.init(vmm, vhost: vhost)
    }

    var name: String { vhost ? "\(vmm.rawValue)-vhost" : vmm.rawValue }
    var transport: String { vmm.transport }

    /// Who moves the NIC's frames between the guest's queues and the tap.
    var dataPath: String { vhost ? "vhost-net (kernel)" : vmm.isApus ? "apus (userspace)" : "QEMU (userspace)" }

    func command(for guest: BenchGuest, apus: String, qemu: QEMUSetup) -> (path: String, arguments: [String]) {
        vmm.command(for: guest, apus: apus, qemu: qemu, vhost: vhost)
    }
}
