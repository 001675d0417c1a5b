@testable import ApusCLI
import Glibc
import LinuxSupport
import Testing

/// The pieces of `apus bench boot|blk|net` that need no KVM: watching a "VMM" (here a shell script
/// standing in for one) through its console, and the report.
@Suite struct BenchGuestRunTests {
    let log = "/tmp/apus-unit-bench-\(getpid()).log"

    func sh(_ script: String) -> (path: String, arguments: [String]) { ("/bin/sh", ["-c", script]) }

    @Test func marksAreParsedAndTimedInOrder() throws {
        let run = try BenchGuestRun(command: sh("""
            echo 'SeaBIOS noise'; printf 'APUS-BENCH: init uptime=1.25\\r\\n'; sleep 0.2
            echo 'APUS-BENCH: seq-read kib_s=2048 iops=2'; echo 'APUS-BENCH: done'; exit 3
            """), timeout: 10, errorLog: log)
        #expect(try run.value("init", "uptime") == 1.25)
        #expect(try run.value("seq-read", "kib_s") == 2048)
        let initTime = try run.time("init"), doneTime = try run.time("done")
        #expect(initTime >= 0 && doneTime - initTime >= 0.15)
        #expect(run.exitTime.map { $0 >= doneTime } == true)
        #expect(run.exitStatus == 3)
        #expect(throws: CLIError.self) { try run.value("rand-read", "iops") }
        #expect(throws: CLIError.self) { try run.value("init", "nothing") }
    }

    @Test func aGuestErrorStopsTheRun() {
        #expect(throws: CLIError.self) {
            try BenchGuestRun(command: sh("echo 'APUS-BENCH: error no /dev/vda'; sleep 30"), timeout: 10, errorLog: log)
        }
    }

    @Test func aSilentVMMTimesOutAndIsKilled() {
        let start = MonotonicClock.now()
        #expect(throws: CLIError.self) {
            try BenchGuestRun(command: sh("echo booting; exec sleep 30"), timeout: 0.5, errorLog: log)
        }
        #expect(MonotonicClock.now() - start < 10)
    }

    @Test func figuresMustBeFiniteAndSane() throws {
        let run = try BenchGuestRun(command: sh("echo 'APUS-BENCH: x a=nan b=1e300 c=-1 d=12.5'"), timeout: 10, errorLog: log)
        for field in ["a", "b", "c"] { #expect(throws: CLIError.self) { try run.value("x", field) } }
        #expect(try run.value("x", "d") == 12.5)
    }

    @Test func aVMMThatClosesItsOutputButLingersIsKilled() throws {
        let start = MonotonicClock.now()
        let run = try BenchGuestRun(command: sh("echo 'APUS-BENCH: done'; exec sleep 30 >&-"), timeout: 1, errorLog: log)
        #expect(run.exitStatus == 128 + SIGKILL)
        #expect(MonotonicClock.now() - start < 10)
    }

    /// Records the marks it is told of; fails on "boom".
    final class RecordingPartner: BenchPartner {
        var keys: [String] = []
        func guestPrinted(_ key: String, _ mark: BenchGuestRun.Mark) throws(CLIError) {
            keys.append(key)
            if key == "boom" { throw CLIError("the partner gave up") }
        }
    }

    @Test func aPartnerHearsEachMarkOnceInOrderAndCanStopTheRun() throws {
        let partner = RecordingPartner()
        _ = try BenchGuestRun(command: sh("echo 'APUS-BENCH: ready'; echo 'APUS-BENCH: ready'; echo noise; echo 'APUS-BENCH: done'"),
                              timeout: 10, errorLog: log, partner: partner)
        #expect(partner.keys == ["ready", "done"])
        let start = MonotonicClock.now()
        #expect(throws: CLIError.self) {
            try BenchGuestRun(command: sh("echo 'APUS-BENCH: boom'; sleep 30"), timeout: 20, errorLog: log, partner: RecordingPartner())
        }
        #expect(MonotonicClock.now() - start < 10)
    }

    @Test func aMissingProgramIsOneClearError() {
        #expect(throws: CLIError.self) {
            try BenchGuestRun(command: ("/nonexistent/qemu", []), timeout: 1, errorLog: log)
        }
    }
}

@Suite struct ChildProcessTests {
    @Test func aLineWithoutEndComesInPiecesAndTheRestAtExit() throws {
        let child = try ChildProcess("/bin/sh", ["-c", "head -c 150000 /dev/zero | tr '\\0' x; printf tail"],
                                     standardError: "/dev/null")
        var lengths: [Int] = []
        while let line = try child.nextLine(before: MonotonicClock.now() + 10) { lengths.append(line.text.count) }
        #expect(lengths == [ChildProcess.maxLineLength, ChildProcess.maxLineLength, 150_004 - 2 * ChildProcess.maxLineLength])
        #expect(try child.waitForExit(before: MonotonicClock.now() + 10) == 0)
    }
}

@Suite struct LinuxBenchReportTests {
    let report = LinuxBenchReport(
        benchmark: "boot", setup: "k + i, 1 vCPU, \"512\" MiB", runs: 3,
        columns: [.apusMMIO, .apusPCI, .apusPCIPIO, .qemuMicrovm, .qemuQ35].map { BenchColumn($0) }, baseline: BenchColumn(.apusMMIO),
        metrics: [.init(key: "to-init", label: "to init (s)", higherIsBetter: false, digits: 2)],
        samples: [[[1, 2, 3], [1, 1, 2], [3, 3, 3], [4, 4, 5], [8, 9, 10]]])

    @Test func ratiosAreEachMedianOverTheBaselines() {
        #expect(report.ratio(0, BenchColumn(.apusPCI)) == 0.5)
        #expect(report.ratio(0, BenchColumn(.apusPCIPIO)) == 1.5)
        #expect(report.ratio(0, BenchColumn(.qemuMicrovm)) == 2.0)
        #expect(report.ratio(0, BenchColumn(.qemuQ35)) == 4.5)
        #expect(report.ratio(0, BenchColumn(.apusMMIO)) == 1.0)
        let withoutBaseline = LinuxBenchReport(benchmark: "boot", setup: "", runs: 3, columns: [BenchColumn(.apusPCI), BenchColumn(.qemuQ35)],
                                               baseline: BenchColumn(.apusMMIO), metrics: report.metrics, samples: [[[1], [2]]])
        #expect(withoutBaseline.ratio(0, BenchColumn(.qemuQ35)) == nil)
    }

    @Test func renderingsCarryEveryVMMAndRatioAndNameTheBaseline() {
        let table = report.table(), json = report.json(), csv = report.csv()
        #expect(table.contains("ratios: each VMM's median over apus-mmio's") && table.contains("ratio to apus-mmio"))
        #expect(table.contains("virtio-pci (PIO notify)") && table.contains("virtio-pci (MMIO notify)") && table.contains("lower is better"))
        #expect(table.contains("2.00 [1.00–3.00]") && table.contains("4.50"))
        // One ratio row per metric, its cells under the VMMs they belong to.
        let ratioRow = table.split(separator: "\n").last.map(String.init) ?? ""
        #expect(ratioRow.hasPrefix("to init (s), lower is better") && ratioRow.hasSuffix("0.50" + String(repeating: " ", count: 22) + "1.50"
            + String(repeating: " ", count: 22) + "2.00" + String(repeating: " ", count: 22) + "4.50"))
        #expect(json.contains("\"baseline\": \"apus-mmio\"") && json.contains("\"qemu-q35/apus-mmio\": 4.500"))
        #expect(json.contains("\"apus-pci-pio\": {\"transport\": \"virtio-pci (PIO notify)\""))
        #expect(json.contains("\"samples\": [4.00, 4.00, 5.00]") && !json.contains("\"apus-mmio/apus-mmio\""))
        #expect(json.contains("\\\"512\\\""))
        #expect(csv.split(separator: "\n").count == 6)
        #expect(csv.contains("to-init,qemu-microvm,virtio-mmio,4.00,4.00,5.00,apus-mmio,2.000\n"))
        #expect(csv.contains("to-init,apus-mmio,virtio-mmio,2.00,1.00,3.00,apus-mmio,\n"))
    }

    @Test func aLoneVMMHasNoRatios() {
        let lone = LinuxBenchReport(benchmark: "boot", setup: "", runs: 1, columns: [BenchColumn(.apusPCI)], baseline: BenchColumn(.apusPCI),
                                    metrics: report.metrics, samples: [[[1]]])
        #expect(!lone.table().contains("ratio") && lone.json().contains("\"ratios\": {}"))
    }
}

@Suite struct BenchVMMTests {
    let guest = BenchGuest(kernel: "k", initrd: "i", commandLine: "c", cpus: 1, memoryMiB: 512, disk: "d.img")

    @Test func apusStillNamesTheMMIOColumn() {
        #expect(BenchVMM(argument: "apus") == .apusMMIO)
        #expect(BenchVMM(argument: "apus-pci-pio") == .apusPCIPIO)
        #expect(BenchVMM(argument: "apus-pio") == nil)
        #expect(!BenchVMM.allCases.map(\.rawValue).contains("apus"))
    }

    @Test func eachApusColumnSpellsOutItsTransport() {
        func arguments(_ vmm: BenchVMM) -> String {
            vmm.command(for: guest, apus: "/apus", qemu: QEMUSetup()).arguments.joined(separator: " ")
        }
        #expect(arguments(.apusMMIO).contains("--transport mmio --disk path=d.img"))
        #expect(arguments(.apusPCI).contains("--transport pci --notify mmio"))
        #expect(arguments(.apusPCIPIO).contains("--transport pci --notify pio"))
        #expect(arguments(.qemuQ35).contains("virtio-blk-pci,drive=disk0"))
        #expect(BenchVMM.allCases.filter(\.isApus) == [.apusMMIO, .apusPCI, .apusPCIPIO])
    }

    @Test func theBaselineIsApusMMIOUnlessToldOtherwise() throws {
        func baseline(_ arguments: [String]) throws -> BenchVMM {
            let options = try LinuxBenchOptions.parse(arguments)
            let column = try options.baseline(of: options.columns(defaults: BenchVMM.allCases))
            #expect(!column.vhost)
            return column.vmm
        }
        #expect(try baseline([]) == .apusMMIO)
        #expect(try baseline(["--vmm", "qemu-q35", "apus-pci"]) == .apusPCI)
        #expect(try baseline(["--vmm", "qemu-q35", "qemu-microvm"]) == .qemuQ35)
        #expect(try baseline(["--vmm", "apus-pci", "apus", "--baseline", "apus-pci"]) == .apusPCI)
        // Only net has vhost columns.
        #expect(throws: (any Error).self) { try baseline(["--baseline", "apus-pci-vhost"]) }
        #expect(throws: (any Error).self) { try LinuxBenchOptions.parse(["--vmm", "apus-pci", "--baseline", "apus-mmio"]) }
        #expect(throws: (any Error).self) { try LinuxBenchOptions.parse(["--vmm", "apus", "apus-mmio"]) }
    }
}

/// `apus bench net`'s pieces that need neither KVM nor a network: its columns, the VMMs' NIC
/// arguments, the iperf3 tests and the reading of iperf3's reports.
@Suite struct NetBenchTests {
    let guest = BenchGuest(kernel: "k", initrd: "i", commandLine: "c", cpus: 1, memoryMiB: 512, disk: nil,
                           net: BenchNet(tap: "apusbench0"))

    func arguments(_ column: String) -> String {
        BenchColumn(argument: column)!.command(for: guest, apus: "/apus", qemu: QEMUSetup()).arguments.joined(separator: " ")
    }

    @Test func columnsNameTheirDataPath() throws {
        #expect(BenchColumn(argument: "qemu-q35-vhost") == BenchColumn(.qemuQ35, vhost: true))
        #expect(BenchColumn(argument: "apus-vhost") == BenchColumn(.apusMMIO, vhost: true))
        #expect(BenchColumn(argument: "apus-pci-pio")?.name == "apus-pci-pio")
        #expect(BenchColumn(argument: "vhost") == nil && BenchColumn(argument: "qemu-q35-vhost-vhost") == nil)
        let options = try LinuxBenchOptions.parse([])
        let columns = options.columns(defaults: [.apusPCI, .qemuQ35], vhost: [false, true])
        #expect(columns.map(\.name) == ["apus-pci", "apus-pci-vhost", "qemu-q35", "qemu-q35-vhost"])
        #expect(try options.baseline(of: columns) == BenchColumn(.apusPCI))
        #expect(try options.baseline(of: [BenchColumn(.apusPCI, vhost: true), BenchColumn(.qemuQ35)]) == BenchColumn(.apusPCI, vhost: true))
    }

    @Test func everyVMMAttachesTheSameTapAndMAC() {
        #expect(arguments("apus-pci").hasSuffix("--net tap=apusbench0,mac=52:54:00:12:34:56,vhost=off"))
        #expect(arguments("apus-mmio-vhost").contains("--transport mmio --net tap=apusbench0,mac=52:54:00:12:34:56,vhost=on"))
        #expect(arguments("qemu-q35").contains("-netdev tap,id=n0,ifname=apusbench0,script=no,downscript=no,vhost=off "
            + "-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile="))
        #expect(arguments("qemu-microvm-vhost").contains("vhost=on -device virtio-net-device,netdev=n0,mac=52:54:00:12:34:56"))
        #expect(!arguments("qemu-q35").contains("-drive"))
        let noNet = BenchGuest(kernel: "k", initrd: "i", commandLine: "c", cpus: 1, memoryMiB: 512, disk: nil)
        #expect(!BenchColumn(.apusPCI, vhost: true).command(for: noNet, apus: "/apus", qemu: QEMUSetup()).arguments.contains("--net"))
    }

    @Test func theTestsGoEachWayWithTheirIperfArguments() {
        let tests = NetBenchTest.all(udpPayload: 64)
        #expect(tests.map(\.name) == ["tcp-guest-to-host-1", "tcp-guest-to-host-4", "tcp-host-to-guest-1", "tcp-host-to-guest-4",
                                      "udp-guest-to-host-64b", "udp-host-to-guest-64b"])
        #expect(tests[0].iperfArguments == ["-R"] && tests[1].iperfArguments == ["-R", "-P", "4"])
        #expect(tests[2].iperfArguments == [] && tests[5].iperfArguments == ["-u", "-l", "64", "-b", "0"])
        #expect(tests.flatMap(\.metrics).map(\.key).suffix(2) == ["udp-host-to-guest-64b-pps", "udp-host-to-guest-64b-loss-pct"])
        #expect(tests.flatMap(\.metrics).count == 8)
        #expect(tests.flatMap(\.metrics).filter { !$0.hasRatios }.map(\.key) == ["udp-guest-to-host-64b-loss-pct", "udp-host-to-guest-64b-loss-pct"])
    }

    @Test func iperfReportsGiveTheReceiversFigures() throws {
        let tcp = try IperfResult(json: """
            {"start": {}, "intervals": [], "end": {"sum_sent": {"start": 0, "end": 1, "seconds": 1.0, "bytes": 1000, "bits_per_second": 9e8, "retransmits": 3},
             "sum_received": {"start": 0, "end": 1, "seconds": 1.0, "bytes": 1000, "bits_per_second": 8.5e8}}}
            """)
        #expect(try NetBenchTest(direction: .hostToGuest, kind: .tcp(streams: 1)).figures(tcp) == [850])
        let udp = try IperfResult(json: """
            {"end": {"sum_received": {"seconds": 2.0, "bytes": 6400, "bits_per_second": 25600, "packets": 300, "lost_packets": 100, "lost_percent": 33.3}}}
            """)
        #expect(try NetBenchTest(direction: .guestToHost, kind: .udp(payload: 64)).figures(udp) == [100, 33.3])
        #expect(throws: CLIError.self) { try NetBenchTest(direction: .guestToHost, kind: .udp(payload: 64)).figures(tcp) }
        let failed = try IperfResult(json: #"{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}"#)
        #expect(failed.error?.contains("Connection refused") == true)
        #expect(throws: CLIError.self) { try failed.receivedBitsPerSecond() }
        #expect(throws: CLIError.self) { try IperfResult(json: "iperf3: error - unable to connect") }
    }

    /// A stand-in guest on this machine's loopback, as bench-net.sh behaves (a server, "ready",
    /// the stop port), driven by the real driver and iperf3: needs iperf3 and the guest's busybox
    /// (for nc), which `make guest-linux` installs and fetches.
    static let busybox = "guest/build/linux/busybox"
    static var haveIperf3: Bool {
        (try? runProcess("/bin/sh", ["-c", "command -v iperf3"]).status) == 0 && access(busybox, X_OK) == 0
    }

    @Test(.enabled(if: haveIperf3)) func theDriverRunsEveryTestThenStopsTheGuest() throws {
        let log = "/tmp/apus-unit-bench-net-\(getpid())"
        let guest = """
            iperf3 -s -B 127.0.0.1 >/dev/null 2>&1 & server=$!
            n=0; until grep -q ':1451 [0-9A-F]*:0000 0A' /proc/net/tcp || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
            \(Self.busybox) nc -l -p \(NetBenchDriver.stopPort) </dev/null >/dev/null 2>&1 & stop=$!
            sleep 0.2; echo 'APUS-BENCH: ready'; wait $stop; kill $server; echo 'APUS-BENCH: done'
            """
        let tests = [NetBenchTest(direction: .guestToHost, kind: .tcp(streams: 2)), NetBenchTest(direction: .hostToGuest, kind: .udp(payload: 64))]
        let driver = NetBenchDriver(client: IperfClient(binary: "iperf3", server: "127.0.0.1", seconds: 1), tests: tests, logPrefix: log)
        let run = try BenchGuestRun(command: ("/bin/sh", ["-c", guest]), timeout: 60, errorLog: "\(log).log", partner: driver)
        #expect(run.marks["done"] != nil && run.exitStatus == 0)
        let figures = try driver.figures()
        #expect(figures.count == 3 && figures[0] > 0 && figures[1] > 0 && (0...100).contains(figures[2]))
    }

    @Test func failedBootsAreCountedAndAColumnWithoutFiguresShowsNone() {
        let report = LinuxBenchReport(
            benchmark: "net", setup: "", runs: 2, columns: [BenchColumn(.apusPCI), BenchColumn(.apusPCI, vhost: true)],
            baseline: BenchColumn(.apusPCI), metrics: [.init(key: "x", label: "x", higherIsBetter: true, digits: 0)],
            samples: [[[100, 120], []]], showsDataPath: true, failures: [0, 2])
        let table = report.table(), json = report.json()
        #expect(table.contains("failed boots (no figures)") && table.contains("2 of 2") && table.contains("—"))
        #expect(report.ratio(0, BenchColumn(.apusPCI, vhost: true)) == nil)
        #expect(json.contains("\"failed_boots\": {\"apus-pci\": 0, \"apus-pci-vhost\": 2}") && json.contains("\"median\": null"))
    }

    @Test func theNetTableShowsEachColumnsDataPath() {
        let report = LinuxBenchReport(
            benchmark: "net", setup: "", runs: 1, columns: [BenchColumn(.apusPCI), BenchColumn(.apusPCI, vhost: true), BenchColumn(.qemuQ35)],
            baseline: BenchColumn(.apusPCI),
            metrics: [.init(key: "x", label: "x", higherIsBetter: true, digits: 0), .init(key: "loss", label: "loss", higherIsBetter: false, digits: 0, hasRatios: false)],
            samples: [[[100], [200], [50]], [[0], [1], [2]]], showsDataPath: true)
        let table = report.table(), json = report.json()
        #expect(table.contains("apus (userspace)") && table.contains("vhost-net (kernel)") && table.contains("QEMU (userspace)"))
        #expect(table.contains("ratio to apus-pci") && json.contains("\"apus-pci-vhost/apus-pci\": 2.000"))
        #expect(json.contains("\"data_path\": \"vhost-net (kernel)\""))
        #expect(report.ratio(1, BenchColumn(.qemuQ35)) == nil && json.contains("\"qemu-q35/apus-pci\": null"))
    }
}
