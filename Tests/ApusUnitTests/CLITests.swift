@testable import ApusCLI
import Machine
import Testing

@Suite struct SizeParserTests {
    @Test(arguments: [
        ("512M", UInt64(512) << 20), ("2G", UInt64(2) << 30), ("64k", UInt64(64) << 10),
        ("1536MiB", UInt64(1536) << 20), ("4096", UInt64(4096)), (" 1G ", UInt64(1) << 30), ("1T", UInt64(1) << 40),
    ])
    func parses(_ text: String, _ expected: UInt64) throws {
        #expect(try parseSize(text) == expected)
    }

    @Test(arguments: ["", "M", "0", "0M", "-1G", "1.5G", "12X", "G2", "99999999999999999999", "20000000T"])
    func refuses(_ text: String) {
        #expect(throws: SizeError.self) { try parseSize(text) }
    }
}

@Suite struct RunCommandTests {
    @Test func parsesABareRun() throws {
        let cmd = try RunCommand.parse(["--bare", "g.bin", "--cpus", "2", "--memory", "64M", "--trace", "exits", "--stats"])
        let config = try cmd.machineConfig()
        #expect(cmd.bare == "g.bin")
        #expect(config.cpus == 2 && config.memorySize == 64 << 20 && config.traceExits)
        #expect(cmd.stats)
    }

    @Test func defaults() throws {
        let config = try RunCommand.parse(["--bare", "g.bin"]).machineConfig()
        #expect(config.cpus == 1 && config.memorySize == 512 << 20 && !config.traceExits)
        #expect(config.seccomp == SeccompSettings(enabled: true, violation: .trap), "apus run confines its threads unless told not to")
    }

    @Test func seccompOffAndTheProbe() throws {
        #expect(try !RunCommand.parse(["--bare", "g.bin", "--seccomp", "off"]).machineConfig().seccomp.enabled)
        let probing = try RunCommand.parse(["--bare", "g.bin", "--seccomp-probe", "io"]).machineConfig()
        #expect(probing.seccomp.enabled && probing.seccomp.probe == .deviceIO)
    }

    @Test(arguments: [
        ["--bare", "g.bin", "--cpus", "0"],
        ["--bare", "g.bin", "--memory", "lots"],
        ["--bare", "g.bin", "--memory", "1M"],
        ["--bare", "g.bin", "--memory", "3M"],
        ["--bare", "g.bin", "--trace", "everything"],
        ["--bare", "g.bin", "--cpus", "57"],          // stacks would overlap the page tables
        ["--bare", "g.bin", "--cpus", "65"],          // ... or wrap below address 0
        ["--bare", "g.bin", "--seccomp", "maybe"],
        ["--bare", "g.bin", "--seccomp", "off", "--seccomp-probe", "vcpu"],
        ["--bare", "g.bin", "--seccomp-probe", "disk"],
        [],
    ])
    func rejectsBadInput(_ args: [String]) {
        #expect(throws: (any Error).self) { _ = try RunCommand.parse(args) }
    }

    @Test func errorMessagesNameTheProblem() {
        do {
            _ = try RunCommand.parse(["--bare", "g.bin", "--memory", "lots"])
            Issue.record("accepted a bad size")
        } catch {
            #expect(RunCommand.message(for: error).contains("'lots' is not a size"))
        }
    }
}

@Suite struct StopReasonTests {
    @Test func exitStatuses() {
        #expect(StopReason.debugExit(3).exitStatus == 3)
        #expect(StopReason.powerOff.exitStatus == 0)
        #expect(StopReason.reboot.exitStatus == 32)
        #expect(StopReason.guestCrash("x").exitStatus == 70)
        #expect(StopReason.vmmError("x").exitStatus == 71)
        #expect(StopReason.signal(2).exitStatus == 130)
    }
}
