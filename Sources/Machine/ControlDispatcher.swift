import Devices
import JSON

/// What the control socket acts on. `Machine` provides one (`MachineControlTarget`); tests give
/// a fake, so the dispatcher is checked without a VM.
public protocol ControlTarget: Sendable {
    /// The members of a `stats` reply after `ok` (run state, exit and device counters).
    func statistics() -> [(String, JSONValue)]
    /// See `MachineControl.pause`.
    func pause(_ completion: @escaping @Sendable (PauseOutcome) -> Void)
    /// See `MachineControl.resume`.
    func resume() -> Bool
    var runState: RunState { get }
    /// Presses the ACPI power button, or says why there is none.
    func pressPowerButton() -> Result<Void, ControlRequestError>
    /// Guest RAM in bytes (a balloon target cannot exceed it).
    var memorySize: UInt64 { get }
    /// The memory balloon, if the machine has one.
    var balloon: (any BalloonControl)? { get }
}

/// A request the dispatcher refuses, with the reason sent back as `"error"`.
public struct ControlRequestError: Error, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// Turns one request line of the control protocol into one reply line.
///
/// The protocol: newline-delimited JSON, one object per line, `{"command": NAME, ...}`; every
/// request gets exactly one reply object, `{"ok": true, ...}` or `{"ok": false, "error": TEXT}`.
/// A request that is malformed, names an unknown command or carries an unknown or ill-typed
/// member changes nothing. The commands are listed in `ControlDispatcher.commands`.
public struct ControlDispatcher: Sendable {
    public typealias Reply = @Sendable (JSONValue) -> Void

    /// The longest request line accepted (the server enforces it before parsing, too).
    public static let maxRequestBytes = 4096
    /// How long `balloon-stats` waits for the guest's numbers.
    public static let balloonStatsTimeoutMilliseconds = 5000

    /// The commands and the members each takes besides `command`.
    public static let commands: [(name: String, members: [String], summary: String)] = [
        ("stats", [], "run state, exits by kind, per vCPU and per device, device events"),
        ("pause", [], "park every vCPU out of KVM_RUN"),
        ("resume", [], "let paused vCPUs run again"),
        ("shutdown", [], "press the ACPI power button: the guest powers off cleanly"),
        ("balloon", ["bytes"], "set the balloon's target size in bytes"),
        ("balloon-stats", [], "the balloon's sizes and the guest's memory statistics"),
    ]

    let target: any ControlTarget
    let parser = JSONParser(limits: .init(maxBytes: ControlDispatcher.maxRequestBytes, maxDepth: 8))

    public init(target: any ControlTarget) { self.target = target }

    /// Handles one request line (without its newline). `reply` is called exactly once: at once
    /// for most commands, later from another thread for `pause` and `balloon-stats`.
    public func handle(line: [UInt8], reply: @escaping Reply) {
        switch request(line) {
        case let .failure(e): reply(Self.error(e.message))
        case let .success((command, value)): perform(command, value, reply)
        }
    }

    /// An error reply.
    public static func error(_ message: String) -> JSONValue {
        .object(["ok": .bool(false), "error": .string(message)])
    }

    static func ok(_ members: [(String, JSONValue)] = []) -> JSONValue {
        .object([("ok", .bool(true))] + members)
    }

    /// Parses and checks a request: an object with a known `command` and only that command's
    /// members.
    func request(_ line: [UInt8]) -> Result<(String, JSONValue), ControlRequestError> {
        let value: JSONValue
        do {
            value = try parser.parse(line)
        } catch {
            return .failure(.init("malformed JSON: \(error)"))
        }
        guard let members = value.members else { return .failure(.init("a request must be a JSON object")) }
        guard let commandValue = value["command"] else {
            return .failure(.init("the request has no \"command\" member"))
        }
        guard let command = commandValue.string else { return .failure(.init("\"command\" must be a string")) }
        guard let spec = Self.commands.first(where: { $0.name == command }) else {
            let known = Self.commands.map(\.name).joined(separator: ", ")
            return .failure(.init("unknown command \"\(command)\" (known: \(known))"))
        }
        for (key, _) in members where key != "command" && !spec.members.contains(key) {
            return .failure(.init("\(command) takes no member \"\(key)\""))
        }
        return .success((command, value))
    }

    func perform(_ command: String, _ request: JSONValue, _ reply: @escaping Reply) {
        switch command {
        case "stats":
            reply(Self.ok(target.statistics()))
        case "pause":
            target.pause { outcome in
                switch outcome {
                case .paused: reply(Self.ok([("state", .string(RunState.paused.rawValue))]))
                case .resumed: reply(Self.error("resumed before every vCPU had parked"))
                case .stopped: reply(Self.error("the machine is stopping"))
                }
            }
        case "resume":
            if target.resume() {
                reply(Self.ok([("state", .string(RunState.running.rawValue))]))
            } else {
                reply(Self.error("the machine is not paused"))
            }
        case "shutdown":
            guard target.runState == .running else {
                reply(Self.error("the machine is \(target.runState.rawValue): resume it first, a paused guest cannot see the power button"))
                return
            }
            switch target.pressPowerButton() {
            case .success: reply(Self.ok([("message", .string("power button pressed; the guest powers off when its software acts on it"))]))
            case let .failure(e): reply(Self.error(e.message))
            }
        case "balloon":
            guard let balloon = target.balloon else { reply(Self.noBalloon); return }
            guard let bytes = request["bytes"]?.uint64 else {
                reply(Self.error("balloon needs \"bytes\": a non-negative integer (the target size in bytes)"))
                return
            }
            guard bytes <= target.memorySize else {
                reply(Self.error("balloon target \(bytes) bytes exceeds the guest's RAM (\(target.memorySize) bytes)"))
                return
            }
            balloon.setTarget(bytes: bytes)
            let sizes = balloon.sizes
            reply(Self.ok([("target", .integer(sizes.target)), ("actual", .integer(sizes.actual))]))
        case "balloon-stats":
            guard let balloon = target.balloon else { reply(Self.noBalloon); return }
            balloon.requestStatistics(timeoutMilliseconds: Self.balloonStatsTimeoutMilliseconds) { stats in
                let sizes = balloon.sizes
                guard let stats else {
                    reply(Self.error("the guest reported no memory statistics (its driver lacks the stats queue, or did not answer within \(Self.balloonStatsTimeoutMilliseconds / 1000) s); balloon target \(sizes.target), actual \(sizes.actual) bytes"))
                    return
                }
                let named = stats.sorted { $0.key < $1.key }.map { (Self.balloonStatName($0.key), JSONValue.integer($0.value)) }
                reply(Self.ok([("target", .integer(sizes.target)), ("actual", .integer(sizes.actual)), ("stats", .object(named))]))
            }
        default:
            reply(Self.error("unknown command \"\(command)\""))
        }
    }

    static let noBalloon = error("this machine has no balloon (start apus with --balloon)")

    /// virtio 1.2 §5.5.6.3's statistics tags, by name.
    static func balloonStatName(_ tag: UInt16) -> String {
        switch tag {
        case 0: "swap_in"
        case 1: "swap_out"
        case 2: "major_faults"
        case 3: "minor_faults"
        case 4: "free_memory"
        case 5: "total_memory"
        case 6: "available_memory"
        case 7: "disk_caches"
        case 8: "hugetlb_allocations"
        case 9: "hugetlb_failures"
        default: "tag_\(tag)"
        }
    }
}
