import LinuxSupport

/// One boot of the benchmark guest under one VMM, watched through its serial console.
///
/// The guest's /init and scenarios (guest/linux) print `APUS-BENCH: <key> [name=value…]` lines;
/// each is stamped with the host's monotonic time when it arrived, relative to the VMM's start.
/// Timing console lines on the host, rather than trusting each VMM's own timers, measures every
/// VMM the same way (firmware, device setup and process start included).
struct BenchGuestRun {
    struct Mark {
        /// Seconds from starting the VMM to the line's arrival.
        let time: Double
        let fields: [String: String]
    }

    /// How long a VMM may take to exit once the guest printed `APUS-BENCH: done`.
    static let exitGrace = 60.0

    /// The first `APUS-BENCH:` line of each key.
    private(set) var marks: [String: Mark] = [:]
    /// Seconds from starting the VMM to the end of its output (it exited).
    private(set) var exitTime: Double?
    private(set) var exitStatus: Int32 = 0
    /// The last console lines, for diagnosing a failed run.
    private(set) var tail: [String] = []

    /// Boots `command`, waiting at most `timeout` seconds; the VMM's stderr goes to `errorLog`;
    /// `partner` is told of each mark as it arrives. Throws when the VMM cannot start, times out,
    /// the guest reports an error or the partner fails.
    init(command: (path: String, arguments: [String]), timeout: Double, errorLog: String,
         partner: any BenchPartner = NoPartner()) throws(CLIError) {
        let child: ChildProcess
        do {
            child = try ChildProcess(command.path, command.arguments, standardError: errorLog)
        } catch {
            throw CLIError("cannot start \(command.path): \(error)")
        }
        // Errors of the pipe and process calls, as one line naming the VMM.
        func watching<T>(_ body: () throws(SystemError) -> T) throws(CLIError) -> T {
            do { return try body() } catch { throw CLIError("watching \(command.path): \(error)") }
        }
        var deadline = child.startTime + timeout
        while let line = try watching({ () throws(SystemError) in try child.nextLine(before: deadline) }) {
            let key = record(line, start: child.startTime)
            if let error = marks["error"] {
                _ = try watching { () throws(SystemError) in try child.terminate() }
                throw CLIError("the guest reported an error: \(error.fields["text"] ?? "?")\(consoleTail)")
            }
            if let key, let mark = marks[key] {
                do { try partner.guestPrinted(key, mark) } catch {
                    _ = try watching { () throws(SystemError) in try child.terminate() }
                    throw CLIError("\(error)\(consoleTail)")
                }
            }
            // After "done" the guest only powers off: a VMM that does not exit soon is stuck.
            if marks["done"] != nil { deadline = min(deadline, MonotonicClock.now() + Self.exitGrace) }
        }
        if !child.outputEnded {
            _ = try watching { () throws(SystemError) in try child.terminate() }
            let limit = marks["done"] != nil ? "\(Int(Self.exitGrace)) s after the guest finished" : "\(Int(timeout)) s"
            throw CLIError("the VMM did not exit within \(limit)\(consoleTail)")
        }
        exitTime = MonotonicClock.now() - child.startTime
        // Closing stdout is not exiting: a VMM that lingers is killed at the same deadline.
        let exitDeadline = deadline
        exitStatus = try watching { () throws(SystemError) in try child.waitForExit(before: exitDeadline) }
    }

    /// Keeps `line` in the tail and, if it is the first mark of its key, in `marks`; returns that key.
    private mutating func record(_ line: ChildProcess.Line, start: Double) -> String? {
        tail.append(line.text)
        if tail.count > 20 { tail.removeFirst() }
        guard let range = line.text.firstRange(of: "APUS-BENCH: ") else { return nil }
        let words = line.text[range.upperBound...].split(separator: " ")
        guard let key = words.first.map(String.init), marks[key] == nil else { return nil }
        var fields: [String: String] = [:]
        if key == "error" {
            fields["text"] = words.dropFirst().joined(separator: " ")
        } else {
            for word in words.dropFirst() {
                guard let eq = word.firstIndex(of: "=") else { continue }
                fields[String(word[..<eq])] = String(word[word.index(after: eq)...])
            }
        }
        marks[key] = Mark(time: line.time - start, fields: fields)
        return key
    }

    /// The last console lines, indented under a heading, to append to an error message.
    var consoleTail: String {
        tail.isEmpty ? "\n  (no console output)" : "\n  last console lines:\n" + tail.map { "    \($0)" }.joined(separator: "\n")
    }

    /// A numeric field of a mark, or an error naming what is missing.
    func value(_ key: String, _ field: String) throws(CLIError) -> Double {
        guard let mark = marks[key] else { throw CLIError("the guest never printed 'APUS-BENCH: \(key)'") }
        // The guest's text: only plain, finite, non-negative numbers of sane size are figures.
        guard let text = mark.fields[field], let value = Double(text), value.isFinite, (0...1e12).contains(value) else {
            throw CLIError("'APUS-BENCH: \(key)' has no valid \(field)= (a number from 0 to 10^12)")
        }
        return value
    }

    /// Seconds from the VMM's start to the arrival of mark `key`.
    func time(_ key: String) throws(CLIError) -> Double {
        guard let mark = marks[key] else { throw CLIError("the guest never printed 'APUS-BENCH: \(key)'") }
        return mark.time
    }
}
