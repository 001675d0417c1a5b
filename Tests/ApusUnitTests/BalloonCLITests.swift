@testable import ApusCLI
import Devices
import Machine
import Testing

@Suite struct BalloonCLITests {
    func config(_ args: [String]) throws -> MachineConfig {
        try RunCommand.parse(RunCommand.normalizedArguments(["--bare", "g.bin"] + args)).machineConfig()
    }

    func balloon(_ args: [String]) throws -> BalloonOptions? {
        try config(args).devices.compactMap { if case let .balloon(o) = $0 { o } else { nil } }.first
    }

    @Test func plainBalloonAtTheEndOrBeforeAnotherOption() throws {
        #expect(try balloon(["--balloon"]) == BalloonOptions())
        #expect(try balloon(["--balloon", "--cpus", "2"]) == BalloonOptions())
        #expect(try balloon([]) == nil)
    }

    @Test func everyOption() throws {
        #expect(try balloon(["--balloon", "size=64M,stats=5,deflate-on-oom=on,free-page-reporting=on"])
                == BalloonOptions(deflateOnOOM: true, freePageReporting: true, statisticsInterval: 5, initialTarget: 64 << 20))
        #expect(try balloon(["--balloon=deflate-on-oom=off"]) == BalloonOptions())
    }

    @Test(arguments: [
        ["--balloon", "size=lots"], ["--balloon", "stats=0"], ["--balloon", "stats=-1"], ["--balloon", "colour=red"],
        ["--balloon", "deflate-on-oom=maybe"], ["--balloon", "size=64M,"], ["--balloon", "size=1G", "--memory", "512M"],
        ["--balloon", "stats=100000"],
    ])
    func refusesBadInput(_ args: [String]) {
        #expect(throws: (any Error).self) { _ = try config(args) }
    }

    @Test func onlyOneBalloon() {
        var c = MachineConfig()
        c.devices = [.balloon(BalloonOptions()), .balloon(BalloonOptions())]
        #expect(throws: MachineError.self) { try c.validate() }
    }

    @Test func normalizingLeavesOtherArgumentsAlone() {
        #expect(RunCommand.normalizedArguments(["run", "--balloon", "size=1G", "--rng"]) == ["run", "--balloon", "size=1G", "--rng"])
        #expect(RunCommand.normalizedArguments(["run", "--balloon", "--rng"]) == ["run", "--balloon=on", "--rng"])
    }
}
