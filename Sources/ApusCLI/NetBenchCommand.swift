import ArgumentParser
import Glibc
import LinuxSupport

/// `apus bench net`: virtio-net throughput and small-packet rate measured by iperf3 between the
/// guest and the host end of its tap, for apus and QEMU, each with its own data path and with
/// the kernel's vhost-net.
struct NetBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "net",
        abstract: "virtio-net TCP throughput and small-UDP packet rate (iperf3): apus and QEMU, each with and without vhost-net.",
        discussion: """
        Every VMM boots the same kernel and initramfs (with Debian's iperf3) with a virtio-net \
        NIC on the same tap, which must exist with its host end configured (root: `ip tuntap \
        add apusbench0 mode tap && ip addr add 10.0.2.1/24 dev apusbench0 && ip link set \
        apusbench0 up`). The guest takes --guest-ip, starts an iperf3 server and says so on \
        its console (guest/linux/scenarios/bench-net.sh); the host then runs iperf3 clients \
        against it, one test after the other, and reads their JSON reports: TCP guest→host \
        (iperf3 -R) and host→guest with 1 and 4 streams (-P 4), and UDP datagrams of \
        --udp-size bytes sent as fast as the sender can (-b 0) each way, reported as packets \
        per second received and the share lost. Then it tells the guest to power off.

        Columns: each VMM of --vmm (default apus-pci and qemu-q35, virtio-pci both) once per \
        data path of --vhost: off (the VMM moves the frames: apus's I/O thread, QEMU's main \
        loop) and on (the kernel's vhost-net; columns named VMM-vhost). apus gets `--net \
        tap=TAP,mac=MAC,vhost=on|off`, QEMU `-netdev tap,ifname=TAP,script=no,vhost=on|off` \
        with virtio-net-pci (q35) or virtio-net-device (microvm). Ratios are each column's \
        median over the --baseline's (apus-pci, apus's own data path, unless told otherwise).

        Needs root (the tap, /dev/vhost-net) and a KVM that boots Linux. On a machine whose \
        /dev/kvm cannot (kvm_pvm), run `make bench-net`: it runs this command inside the \
        nested test host, tap included.

        Examples:
          apus bench net
          apus bench net --runs 3 --time 10 --json
          apus bench net --vmm apus-mmio apus-pci qemu-microvm qemu-q35 --vhost off
          apus bench net --baseline qemu-q35-vhost --iperf3 /usr/local/bin/iperf3
        """)

    /// `--vhost off on`.
    enum VhostMode: String, ExpressibleByArgument, CaseIterable {
        case off, on
    }

    @OptionGroup var options: LinuxBenchOptions

    @Option(help: ArgumentHelp("Initramfs with Apus's benchmark /init and iperf3 (make guest-linux-iperf3).", valueName: "file"))
    var initrd = "guest/build/linux/initrd-iperf3.cpio.gz"

    @Option(help: ArgumentHelp("The tap every VMM attaches the guest's NIC to; it must exist, its host end up with an address in --guest-ip's network.", valueName: "name"))
    var tap = "apusbench0"

    @Option(name: .customLong("guest-ip"), help: ArgumentHelp("The guest's IPv4 address and prefix length.", valueName: "address/prefix"))
    var guestIP = "10.0.2.15/24"

    @Option(name: .customLong("vhost"), parsing: .upToNextOption,
            help: ArgumentHelp("The NIC data paths compared for each VMM: off (the VMM's own), on (vhost-net).", valueName: "off|on"))
    var vhostModes: [VhostMode] = VhostMode.allCases

    @Option(help: ArgumentHelp("Seconds each iperf3 test transmits.", valueName: "seconds"))
    var time: Int = 5

    @Option(name: .customLong("udp-size"), help: ArgumentHelp("Payload bytes of the UDP test's datagrams.", valueName: "bytes"))
    var udpSize: Int = 64

    @Option(help: ArgumentHelp("The host's iperf3 client.", valueName: "file"))
    var iperf3 = "iperf3"

    func validate() throws {
        guard (1...600).contains(time) else { throw ValidationError("--time must be 1 to 600 seconds") }
        guard (16...1472).contains(udpSize) else { throw ValidationError("--udp-size must be 16 to 1472 bytes") }
        guard !tap.isEmpty, tap.utf8.count <= TapDevice.maxNameLength, !tap.contains("/") else {
            throw ValidationError("--tap: a tap name is 1 to \(TapDevice.maxNameLength) bytes, without '/'")
        }
        guard guestAddress != nil else { throw ValidationError("--guest-ip wants an IPv4 address and a prefix length, e.g. 10.0.2.15/24 (got '\(guestIP)')") }
        guard !vhostModes.isEmpty, Set(vhostModes).count == vhostModes.count else { throw ValidationError("--vhost wants off, on or both, once each") }
        _ = try options.baseline(of: columns)
    }

    /// --guest-ip's address without the prefix, or nil when --guest-ip is malformed.
    private var guestAddress: String? {
        let parts = guestIP.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), (1...30).contains(prefix) else { return nil }
        var address = in_addr()
        return inet_pton(AF_INET, String(parts[0]), &address) == 1 ? String(parts[0]) : nil
    }

    private var columns: [BenchColumn] {
        options.columns(defaults: [.apusPCI, .qemuQ35], vhost: vhostModes.map { $0 == .on })
    }

    func run() throws {
        guard access("/sys/class/net/\(tap)", F_OK) == 0 else {
            throw CLIError("""
                there is no network interface \(tap); create the tap first (as root): \
                ip tuntap add \(tap) mode tap && ip addr add 10.0.2.1/24 dev \(tap) && ip link set \(tap) up
                """)
        }
        let logDirectory = try options.makeLogDirectory()
        let guest = BenchGuest(kernel: options.kernel, initrd: initrd,
                               commandLine: benchCommandLine("bench-net", "apus.bench.ip=\(guestIP)"),
                               cpus: options.cpus, memoryMiB: try options.memoryMiB(), disk: nil, net: BenchNet(tap: tap))
        let tests = NetBenchTest.all(udpPayload: udpSize)
        let client = IperfClient(binary: iperf3, server: guestAddress!, seconds: time)
        let columns = columns
        var bench = LinuxBench(
            name: "net", options: options, columns: columns, baseline: try options.baseline(of: columns),
            runs: options.runs ?? 3, logDirectory: logDirectory, guest: guest, metrics: tests.flatMap(\.metrics),
            setup: "iperf3 between the guest (\(guestIP)) and the host end of tap \(tap), \(time) s per test; "
                + "\(options.cpus) vCPU, \(guest.memoryMiB) MiB",
            partner: { column, run in
                NetBenchDriver(client: client, tests: tests, logPrefix: "\(logDirectory)/net-\(column.name)-\(run)-iperf3",
                               label: "\(column.name), run \(run)")
            },
            figures: { boot, driver throws(CLIError) in
                guard boot.marks["done"] != nil else { throw CLIError("the guest never finished (no 'APUS-BENCH: done')") }
                return try driver.figures()
            })
        // Network load makes the nested test host's emulated SVM crash guests now and then: one
        // failed boot must not cost the other columns' figures. The report counts failures.
        bench.keepGoing = true
        let report = try bench.run()
        print(options.render(report), terminator: "")
        if !report.failures.isEmpty {
            fputsError("bench net: \(report.failures.reduce(0, +)) boot(s) failed; the report counts them per column")
            throw ExitCode.failure
        }
    }
}
