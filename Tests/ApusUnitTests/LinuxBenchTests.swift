@testable import ApusCLI
import Glibc
import LinuxSupport
import Testing

/// The pieces of `apus bench boot|blk` that need no KVM: watching a "VMM" (here a shell script
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
        vmms: [.apusMMIO, .apusPCI, .apusPCIPIO, .qemuMicrovm, .qemuQ35], baseline: .apusMMIO,
        metrics: [.init(key: "to-init", label: "to init (s)", higherIsBetter: false, digits: 2)],
        samples: [[[1, 2, 3], [1, 1, 2], [3, 3, 3], [4, 4, 5], [8, 9, 10]]])

    @Test func ratiosAreEachMedianOverTheBaselines() {
        #expect(report.ratio(0, .apusPCI) == 0.5)
        #expect(report.ratio(0, .apusPCIPIO) == 1.5)
        #expect(report.ratio(0, .qemuMicrovm) == 2.0)
        #expect(report.ratio(0, .qemuQ35) == 4.5)
        #expect(report.ratio(0, .apusMMIO) == 1.0)
        let withoutBaseline = LinuxBenchReport(benchmark: "boot", setup: "", runs: 3, vmms: [.apusPCI, .qemuQ35],
                                               baseline: .apusMMIO, metrics: report.metrics, samples: [[[1], [2]]])
        #expect(withoutBaseline.ratio(0, .qemuQ35) == nil)
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
        let lone = LinuxBenchReport(benchmark: "boot", setup: "", runs: 1, vmms: [.apusPCI], baseline: .apusPCI,
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
        #expect(try LinuxBenchOptions.parse([]).baseline == .apusMMIO)
        #expect(try LinuxBenchOptions.parse(["--vmm", "qemu-q35", "apus-pci"]).baseline == .apusPCI)
        #expect(try LinuxBenchOptions.parse(["--vmm", "qemu-q35", "qemu-microvm"]).baseline == .qemuQ35)
        #expect(try LinuxBenchOptions.parse(["--vmm", "apus-pci", "apus", "--baseline", "apus-pci"]).baseline == .apusPCI)
        #expect(throws: (any Error).self) { try LinuxBenchOptions.parse(["--vmm", "apus-pci", "--baseline", "apus-mmio"]) }
        #expect(throws: (any Error).self) { try LinuxBenchOptions.parse(["--vmm", "apus", "apus-mmio"]) }
    }
}
