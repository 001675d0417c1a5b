import Locking
import Devices
import JSON
import Machine
import Synchronization
import Testing

/// The control protocol's dispatcher against a fake machine: one reply per request, errors
/// for anything malformed, unknown or ill-typed (and nothing done then), each command's reply.
@Suite struct ControlDispatcherTests {
    final class FakeBalloon: BalloonControl {
        let target = Locked<UInt64>(0)
        let answer: [UInt16: UInt64]?
        init(answer: [UInt16: UInt64]?) { self.answer = answer }
        func setTarget(bytes: UInt64) { target.withLock { $0 = bytes } }
        var sizes: (target: UInt64, actual: UInt64) { (target.withLock { $0 }, 4096) }
        func requestStatistics(timeoutMilliseconds: Int, _ completion: @escaping @Sendable ([UInt16: UInt64]?) -> Void) {
            completion(answer)
        }
    }

    final class FakeMachine: ControlTarget {
        struct State { var paused = false; var presses = 0; var pauses = 0 }
        let state = Locked(State())
        let hasButton: Bool
        let balloon: (any BalloonControl)?
        let memorySize: UInt64 = 256 << 20
        init(hasButton: Bool = true, balloon: (any BalloonControl)? = nil) {
            self.hasButton = hasButton
            self.balloon = balloon
        }
        func statistics() -> [(String, JSONValue)] { [("state", .string(runState.rawValue)), ("exits", .object(["total": .integer(7)]))] }
        func pause(_ completion: @escaping @Sendable (PauseOutcome) -> Void) {
            state.withLock { $0.paused = true; $0.pauses += 1 }
            completion(.paused)
        }
        func resume() -> Bool { state.withLock { s in defer { s.paused = false }; return s.paused } }
        var runState: RunState { state.withLock { $0.paused } ? .paused : .running }
        func pressPowerButton() -> Result<Void, ControlRequestError> {
            guard hasButton else { return .failure(.init("no power button")) }
            state.withLock { $0.presses += 1 }
            return .success(())
        }
    }

    /// Sends `line` and returns the one reply (failing if there is not exactly one).
    func ask(_ target: FakeMachine, _ line: String, sourceLocation: SourceLocation = #_sourceLocation) -> JSONValue {
        let replies = Locked<[JSONValue]>([])
        ControlDispatcher(target: target).handle(line: Array(line.utf8)) { r in replies.withLock { $0.append(r) } }
        let got = replies.withLock { $0 }
        #expect(got.count == 1, "replies to \(line): \(got)", sourceLocation: sourceLocation)
        return got.first ?? .null
    }

    func error(_ reply: JSONValue) -> String? {
        reply["ok"] == .bool(false) ? reply["error"]?.string : nil
    }

    @Test func statsReplyCarriesTheTargetsCounters() {
        let reply = ask(FakeMachine(), #"{"command":"stats"}"#)
        #expect(reply.serialized == #"{"ok":true,"state":"running","exits":{"total":7}}"#)
    }

    @Test(arguments: [
        ("not json", "malformed JSON"), ("[1]", "must be a JSON object"), (#"{}"#, "no \"command\""),
        (#"{"command":3}"#, "must be a string"), (#"{"command":"reboot"}"#, "unknown command \"reboot\""),
        (#"{"command":"stats","verbose":true}"#, "takes no member \"verbose\""),
        (#"{"command":"pause","command":"pause"}"#, "appears twice"),
        (#"{"command":"balloon"}"#, "no balloon"),
        (String(repeating: " ", count: 5000), "at most 4096"),
    ])
    func badRequestsGetAnErrorAndChangeNothing(line: String, why: String) {
        let machine = FakeMachine()
        let reply = ask(machine, line)
        #expect(error(reply)?.contains(why) == true, "\(reply.serialized)")
        #expect(machine.state.withLock { $0.pauses == 0 && $0.presses == 0 })
    }

    @Test func pauseResumeAndStateInStats() {
        let machine = FakeMachine()
        #expect(ask(machine, #"{"command":"pause"}"#).serialized == #"{"ok":true,"state":"paused"}"#)
        #expect(ask(machine, #"{"command":"stats"}"#)["state"]?.string == "paused")
        #expect(error(ask(machine, #"{"command":"shutdown"}"#))?.contains("resume it first") == true)
        #expect(ask(machine, #"{"command":"resume"}"#).serialized == #"{"ok":true,"state":"running"}"#)
        #expect(error(ask(machine, #"{"command":"resume"}"#)) == "the machine is not paused")
    }

    @Test func shutdownPressesTheButtonOrSaysThereIsNone() {
        let machine = FakeMachine()
        #expect(ask(machine, #"{"command":"shutdown"}"#)["ok"] == .bool(true))
        #expect(machine.state.withLock { $0.presses } == 1)
        #expect(error(ask(FakeMachine(hasButton: false), #"{"command":"shutdown"}"#)) == "no power button")
    }

    @Test func balloonSetsTheTargetWithinRAM() {
        let balloon = FakeBalloon(answer: [4: 100, 5: 200, 42: 1])
        let machine = FakeMachine(balloon: balloon)
        #expect(ask(machine, #"{"command":"balloon","bytes":134217728}"#).serialized == #"{"ok":true,"target":134217728,"actual":4096}"#)
        for bad in [#"{"command":"balloon","bytes":-1}"#, #"{"command":"balloon","bytes":1.5}"#,
                    #"{"command":"balloon","bytes":"128M"}"#, #"{"command":"balloon"}"#] {
            #expect(error(ask(machine, bad))?.contains("non-negative integer") == true, "\(bad)")
        }
        #expect(error(ask(machine, #"{"command":"balloon","bytes":268435457}"#))?.contains("exceeds the guest's RAM") == true)
        #expect(balloon.sizes.target == 134_217_728)
        let stats = ask(machine, #"{"command":"balloon-stats"}"#)
        #expect(stats.serialized == #"{"ok":true,"target":134217728,"actual":4096,"stats":{"free_memory":100,"total_memory":200,"tag_42":1}}"#)
        #expect(error(ask(FakeMachine(balloon: FakeBalloon(answer: nil)), #"{"command":"balloon-stats"}"#))?.contains("no memory statistics") == true)
        #expect(error(ask(FakeMachine(), #"{"command":"balloon-stats"}"#))?.contains("no balloon") == true)
    }
}
