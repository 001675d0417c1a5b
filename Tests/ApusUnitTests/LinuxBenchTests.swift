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
        vmms: [.apus, .qemuMicrovm, .qemuQ35],
        metrics: [.init(key: "to-init", label: "to init (s)", higherIsBetter: false, digits: 2)],
        samples: [[[1, 2, 3], [4, 4, 5], [8, 9, 10]]])

    @Test func ratiosAreApusMediansOverEachQEMU() {
        #expect(report.ratio(0, over: .qemuMicrovm) == 0.5)
        #expect(report.ratio(0, over: .qemuQ35) == 2.0 / 9.0)
        #expect(report.ratio(0, over: .apus) == 2.0 / 2.0)
    }

    @Test func renderingsCarryEveryVMMAndRatio() {
        let table = report.table(), json = report.json(), csv = report.csv()
        #expect(table.contains("apus/qemu-microvm") && table.contains("0.50") && table.contains("lower is better"))
        #expect(table.contains("virtio-pci") && table.contains("2.00 [1.00–3.00]"))
        #expect(json.contains("\"apus/qemu-q35\": 0.222") && json.contains("\"samples\": [4.00, 4.00, 5.00]"))
        #expect(json.contains("\\\"512\\\""))
        #expect(csv.split(separator: "\n").count == 4)
        #expect(csv.contains("to-init,qemu-microvm,virtio-mmio,4.00,4.00,5.00,0.500"))
    }
}
