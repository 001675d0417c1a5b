import ArgumentParser
import Glibc
import LinuxSupport

/// The command line of every benchmark boot: serial console, no boot chatter (every line costs
/// port-I/O exits, and the VMMs would race their UARTs rather than boot), and the scenario.
func benchCommandLine(_ scenario: String, _ extra: String = "") -> String {
    "console=ttyS0 panic=-1 quiet loglevel=4 apus.bench=1 apus.test=\(scenario)" + (extra.isEmpty ? "" : " \(extra)")
}

/// What both commands' help says about the columns.
private let vmmDiscussion = """
    By default five VMMs take turns: apus-mmio (apus over virtio-mmio; `apus` is accepted for \
    it), apus-pci (virtio-pci, doorbells in a memory BAR), apus-pci-pio (virtio-pci, doorbells \
    in an I/O BAR), qemu-microvm (virtio-mmio) and qemu-q35 (virtio-pci), so apus-mmio beside \
    microvm and apus-pci beside q35 compare VMMs on one transport, and the apus columns compare \
    transports in one VMM. Each run therefore takes five boots; --vmm picks fewer. Ratios are \
    each VMM's median over the --baseline's (apus-mmio unless told otherwise).
    """

/// `apus bench boot`: time from starting the VMM to the guest's /init, and to its exit after
/// powering off, for apus (over each transport) and QEMU booting the same kernel and initramfs.
struct BootBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Boot time to init and to poweroff: apus (virtio-mmio, virtio-pci) beside QEMU (microvm, q35).",
        discussion: """
        Every VMM boots the same kernel and initramfs with the same command line, vCPUs and RAM. \
        The guest's /init prints a marker on the serial console as its first act; the time from \
        starting the VMM to that line's arrival is "to init" (process start, firmware, kernel \
        load and kernel boot included), and the time to the VMM's exit after /init powers off \
        is "to exit". The kernel's own uptime at init is shown too: the difference is what \
        happens before the kernel's clock starts (VMM setup and firmware).

        Every VMM also serves a small scratch image (16 MiB) as a virtio-blk disk that no \
        program in the guest touches, so each column boots its transport: the kernel enumerates the bus \
        before init, and /init's module loading probes the disk before poweroff. Without a \
        virtio device apus would not even install its PCI root, and the apus columns would boot \
        one and the same machine.

        \(vmmDiscussion)

        Needs a KVM that boots Linux (VMX or SVM). On a machine whose /dev/kvm cannot (kvm_pvm), \
        run `make bench-boot`: it runs this command inside the nested test host.

        Examples:
          apus bench boot
          apus bench boot --runs 9 --vmm apus-mmio apus-pci qemu-q35 --json
          apus bench boot --vmm apus-pci apus-pci-pio qemu-q35 --baseline apus-pci
          apus bench boot --qemu /usr/local/bin/qemu-system-x86_64 --csv > boot.csv
        """)

    @OptionGroup var options: LinuxBenchOptions

    @Option(help: ArgumentHelp("Initramfs with Apus's benchmark /init (guest/linux).", valueName: "file"))
    var initrd = "guest/build/linux/initrd.cpio.gz"

    func validate() throws {
        _ = try options.baseline(of: options.columns(defaults: BenchVMM.allCases))
    }

    func run() throws {
        let logDirectory = try options.makeLogDirectory()
        let image = "\(logDirectory)/boot-scratch.img"
        try createScratchImage(image, mebibytes: 16)
        defer { unlink(image) }
        let guest = BenchGuest(kernel: options.kernel, initrd: initrd, commandLine: benchCommandLine("bench-boot"),
                               cpus: options.cpus, memoryMiB: try options.memoryMiB(), disk: image)
        let metrics = [
            LinuxBenchReport.Metric(key: "to-init", label: "to init (s)", higherIsBetter: false, digits: 2),
            LinuxBenchReport.Metric(key: "kernel-uptime-at-init", label: "kernel's uptime at init (s)", higherIsBetter: false, digits: 2),
            LinuxBenchReport.Metric(key: "to-exit", label: "to exit (s)", higherIsBetter: false, digits: 2),
        ]
        let bench = try LinuxBench(name: "boot", options: options, runs: options.runs ?? 5,
                               logDirectory: logDirectory, guest: guest, metrics: metrics,
                               setup: "\(options.kernel) + \(initrd), a 16 MiB virtio-blk disk, \(options.cpus) vCPU, \(guest.memoryMiB) MiB") { boot throws(CLIError) in
            guard let exit = boot.exitTime else { throw CLIError("the VMM did not exit") }
            return [try boot.time("init"), try boot.value("init", "uptime"), exit]
        }
        print(options.render(try bench.run()), terminator: "")
    }
}

/// `apus bench blk`: virtio-blk throughput and IOPS measured by fio inside the guest, for apus
/// (over each transport) and QEMU serving the same raw image.
struct BlkBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blk",
        abstract: "virtio-blk sequential and 4 KiB random throughput: apus (virtio-mmio, virtio-pci) beside QEMU.",
        discussion: """
        Every VMM boots the same kernel and initramfs (with Debian's fio) and serves the same raw \
        scratch image as its first virtio-blk disk. In the guest, fio runs four jobs against \
        /dev/vda, one after the other: sequential read and write in 1 MiB blocks, random read \
        and write in 4 KiB blocks, each with O_DIRECT. By default one request is in flight, so \
        every figure is bound by the round trip of a request through the VMM; --iodepth N keeps \
        N in flight (libaio) (guest/linux/scenarios/bench-blk.sh). \
        The image is created (filled with a pattern, so reads hit data) before the first boot and \
        removed after the last.

        \(vmmDiscussion)

        Needs a KVM that boots Linux (VMX or SVM). On a machine whose /dev/kvm cannot (kvm_pvm), \
        run `make bench-blk`: it runs this command inside the nested test host.

        Examples:
          apus bench blk
          apus bench blk --runs 3 --runtime 10 --json
          apus bench blk --vmm apus-pci apus-pci-pio --disk-size 1G
          apus bench blk --iodepth 16 --vmm apus-mmio apus-pci qemu-q35
        """)

    @OptionGroup var options: LinuxBenchOptions

    @Option(help: ArgumentHelp("Initramfs with Apus's benchmark /init and fio (make guest-linux-fio).", valueName: "file"))
    var initrd = "guest/build/linux/initrd-fio.cpio.gz"

    @Option(help: ArgumentHelp("Seconds each fio job runs.", valueName: "seconds"))
    var runtime: Int = 5

    @Option(help: ArgumentHelp("Requests in flight per job: 1 (psync, the default) measures a request's round trip; more uses libaio.", valueName: "n"))
    var iodepth: Int = 1

    @Option(name: .customLong("disk-size"), help: ArgumentHelp("Size of the scratch image, e.g. 256M.", valueName: "size"))
    var diskSize = "256M"

    func validate() throws {
        guard (1...3600).contains(runtime) else { throw ValidationError("--runtime must be 1 to 3600 seconds") }
        guard (1...256).contains(iodepth) else { throw ValidationError("--iodepth must be 1 to 256") }
        _ = try options.baseline(of: options.columns(defaults: BenchVMM.allCases))
        guard let bytes = try? parseSize(diskSize), bytes % (1 << 20) == 0, bytes >= 16 << 20 else {
            throw ValidationError("--disk-size must be a whole number of MiB, at least 16M (got '\(diskSize)')")
        }
    }

    func run() throws {
        let logDirectory = try options.makeLogDirectory()
        let image = "\(logDirectory)/blk-scratch.img"
        try createScratchImage(image, mebibytes: Int(try parseSize(diskSize) >> 20))
        defer { unlink(image) }
        let guest = BenchGuest(kernel: options.kernel, initrd: initrd,
                               commandLine: benchCommandLine("bench-blk", "apus.bench.runtime=\(runtime) apus.bench.iodepth=\(iodepth)"),
                               cpus: options.cpus, memoryMiB: try options.memoryMiB(), disk: image)
        // The fio jobs of bench-blk.sh, in its order: throughput for 1 MiB blocks, IOPS for 4 KiB.
        let jobs: [(name: String, sequential: Bool)] = [("seq-read", true), ("seq-write", true), ("rand-read", false), ("rand-write", false)]
        let metrics = jobs.map { job in
            job.sequential
                ? LinuxBenchReport.Metric(key: "\(job.name)-mib-s", label: "\(job.name) 1 MiB (MiB/s)", higherIsBetter: true, digits: 1)
                : LinuxBenchReport.Metric(key: "\(job.name)-iops", label: "\(job.name) 4 KiB (IOPS)", higherIsBetter: true, digits: 0)
        }
        let bench = try LinuxBench(name: "blk", options: options, runs: options.runs ?? 3, logDirectory: logDirectory, guest: guest, metrics: metrics,
                               setup: "fio on /dev/vda (\(diskSize) raw image), \(runtime) s per job, O_DIRECT, "
                                   + (iodepth == 1 ? "queue depth 1 (psync); " : "queue depth \(iodepth) (libaio); ")
                                   + "\(options.cpus) vCPU, \(guest.memoryMiB) MiB") { boot throws(CLIError) in
            guard boot.marks["done"] != nil else { throw CLIError("the guest never finished its fio jobs") }
            return try jobs.map { job throws(CLIError) in
                job.sequential ? try boot.value(job.name, "kib_s") / 1024 : try boot.value(job.name, "iops")
            }
        }
        print(options.render(try bench.run()), terminator: "")
    }
}

/// A raw image of `mebibytes` MiB filled with a non-zero pattern, so that reads move data
/// (a sparse image would let the host answer reads of holes for free).
private func createScratchImage(_ path: String, mebibytes: Int) throws(CLIError) {
    let fd: OwnedFD = try { () throws(CLIError) -> OwnedFD in
        do { return try OwnedFD.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC) } catch {
            throw CLIError("cannot create the scratch image \(path): \(error)")
        }
    }()
    let raw = fd.raw
    var block = [UInt8](repeating: 0, count: 1 << 20)
    for i in block.indices { block[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 9) | 1 }
    for _ in 0..<mebibytes {
        let written = block.withUnsafeBytes { write(raw, $0.baseAddress, $0.count) }
        guard written == block.count else {
            throw CLIError("cannot write the scratch image \(path): \(SystemError.current("write"))")
        }
    }
}
