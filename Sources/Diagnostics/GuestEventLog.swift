import Locking
import Logging

/// What devices and transports say about what happened to them, through swift-log — with one
/// rule on top: a message the guest can cause is logged the first time per device and cause,
/// and only counted after that. A guest that repeats a bad request a million times must not
/// write a million lines (or fill a disk with them); `--stats` shows the counts instead.
///
/// One `GuestEventLog` per machine; each device gets a `DeviceLog` naming it.
public final class GuestEventLog: Sendable {
    private let logger: Logger
    private struct Key: Hashable { let source: String, cause: String }
    private let seen = Locked<[Key: Int]>([:])

    /// - Parameter logger: where the first occurrence of each cause goes (at warning level;
    ///   the repeats at debug level, so `--log-level debug` shows every one).
    public init(logger: Logger) { self.logger = logger }

    /// A log whose lines go to `sink` (one line each, no prefix added).
    public convenience init(sink: @escaping @Sendable (String) -> Void) {
        self.init(logger: Logger(label: "apus", factory: { _ in SinkLogHandler(sink: sink) }))
    }

    /// A log that drops everything (tests, benchmarks).
    public static let discard = GuestEventLog(sink: { _ in })

    /// Reports `details` under `cause` for `source`: logged if it is the first, counted always.
    public func report(_ source: String, cause: String, _ details: @autoclosure () -> String) {
        let count = seen.withLock { s -> Int in
            let key = Key(source: source, cause: cause)
            s[key, default: 0] += 1
            return s[key]!
        }
        let line = "\(source): \(details())"
        if count == 1 {
            logger.warning("\(line)")
        } else {
            logger.debug("\(line) (repeat \(count))")
        }
    }

    /// Causes reported more than once, for `--stats`: how often each happened.
    public var repeated: [(source: String, cause: String, count: Int)] {
        seen.withLock { s in
            s.filter { $0.value > 1 }.map { (source: $0.key.source, cause: $0.key.cause, count: $0.value) }
                .sorted { ($0.source, $0.cause) < ($1.source, $1.cause) }
        }
    }

    /// Every cause reported so far and how often, by source and cause (`apus ctl stats`).
    public var counts: [(source: String, cause: String, count: Int)] {
        seen.withLock { s in
            s.map { (source: $0.key.source, cause: $0.key.cause, count: $0.value) }
                .sorted { ($0.source, $0.cause) < ($1.source, $1.cause) }
        }
    }

    /// The count of one cause (for tests).
    public func count(_ source: String, cause: String) -> Int { seen.withLock { $0[Key(source: source, cause: cause)] ?? 0 } }

    /// A device's view of this log.
    public func device(_ name: String) -> DeviceLog { DeviceLog(source: name, log: self) }
}

/// One device's log: `report(cause:_:)` with the device's name filled in.
public struct DeviceLog: Sendable {
    public let source: String
    let log: GuestEventLog

    public init(source: String, log: GuestEventLog) {
        self.source = source
        self.log = log
    }

    /// A log that drops everything.
    public static let discard = DeviceLog(source: "", log: .discard)

    /// Reports `details` once per `cause` (a short constant naming the kind of event).
    public func report(_ cause: String, _ details: @autoclosure () -> String) {
        log.report(source, cause: cause, details())
    }
}

/// A swift-log handler that hands each message to a line sink, unprefixed (the sink decides:
/// apus's stderr sink writes `apus: LINE`).
public struct SinkLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let sink: @Sendable (String) -> Void

    public init(sink: @escaping @Sendable (String) -> Void, level: Logger.Level = .info) {
        self.sink = sink
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        sink(event.message.description)
    }
}
